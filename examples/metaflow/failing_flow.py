"""A @batch step that fails: the run stops, and `python failing_flow.py logs RUN/check` shows why."""

from metaflow import FlowSpec, batch, step


class FailingFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.check)

    @batch(cpu=1)
    @step
    def check(self):
        print("checking sample s7")
        if self.input_is_truncated():
            raise ValueError("sample s7: truncated input file")
        self.next(self.end)

    def input_is_truncated(self):
        return True

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailingFlow()
