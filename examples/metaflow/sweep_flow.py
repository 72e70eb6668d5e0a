"""A Metaflow foreach over @batch steps on a batch-stacks stack: one input fails its first attempt
and @retry runs it again. Run it as README's "Using Metaflow with a batch-stacks stack" says."""

from metaflow import FlowSpec, batch, current, retry, step


class SweepFlow(FlowSpec):
    @batch(cpu=1)
    @step
    def start(self):
        self.samples = ["a", "bb", "ccc"]
        self.next(self.measure, foreach="samples")

    # 512 MiB: a Metaflow step is a handful of Python processes sharing their libraries; charged
    # once per page (as a cgroup does) it fits.
    @retry(times=1, minutes_between_retries=0)
    @batch(cpu=1, memory=512)
    @step
    def measure(self):
        if self.input == "bb" and current.retry_count == 0:
            raise RuntimeError("flaky input bb (fails on its first attempt)")
        self.result = (self.input, len(self.input) ** 2, current.retry_count)
        self.next(self.join)

    @batch(cpu=1)
    @step
    def join(self, inputs):
        self.results = sorted(i.result for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("results", self.results)


if __name__ == "__main__":
    SweepFlow()
