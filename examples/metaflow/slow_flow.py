"""A long @batch step, for `python slow_flow.py batch kill`."""

import time

from metaflow import FlowSpec, batch, step


class SlowFlow(FlowSpec):
    @batch(cpu=1)
    @step
    def start(self):
        print("working for a long time")
        time.sleep(600)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SlowFlow()
