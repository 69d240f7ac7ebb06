"""A training process that saves a checkpoint after every step until it is killed
(test_checkpoint_atomic.py kills it at random moments). Prints the step after each save."""

import sys

import numpy as np

import jobflow as flow
import jobflow.typing as tp


def define_job():
    @flow.global_function(type="train")
    def job(x: tp.Numpy.Placeholder((8, 256))) -> tp.Numpy:
        w = flow.get_variable("w", (256, 256), initializer=flow.random_normal_initializer(stddev=0.01))
        loss = flow.math.reduce_mean(flow.math.square(flow.matmul(x, w)), axis=1)
        flow.optimizer.SGD(0.01, momentum=0.9).minimize(loss)
        return loss

    return job


if __name__ == "__main__":
    job = define_job()
    x = np.ones((8, 256), np.float32)
    while True:
        job(x)
        flow.checkpoint.save(sys.argv[1], overwrite=True)
        print(int(flow.get_all_variables()["System-Train-TrainStep-job"]), flush=True)
