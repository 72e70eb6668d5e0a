"""Where the local emulator keeps its pid, endpoint and each locally deployed stack's outputs."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runner.errors import RunnerError
from runner.stack_outputs import StackOutputs, parse_outputs


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    port: int
    endpoint_url: str
    log_file: str
    started_at: str


class LocalState:
    """Files under ``<state dir>/local``: ``server.json`` and ``stacks/<stack>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "local"

    @property
    def server_file(self) -> Path:
        return self.root / "server.json"

    @property
    def log_file(self) -> Path:
        return self.root / "moto.log"

    def stack_file(self, stack: str) -> Path:
        return self.root / "stacks" / f"{stack}.json"

    def _write(self, path: Path, data: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(temporary, path)

    def save_server(self, info: ServerInfo) -> None:
        self._write(self.server_file, asdict(info))

    def server(self) -> ServerInfo | None:
        try:
            return ServerInfo(**json.loads(self.server_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def clear_server(self) -> None:
        self.server_file.unlink(missing_ok=True)
        # Deployed stacks lived in the emulator's memory and are gone with it.
        for path in (self.root / "stacks").glob("*.json"):
            path.unlink()

    def save_outputs(self, stack: str, outputs: dict[str, Any]) -> None:
        self._write(self.stack_file(stack), outputs)

    def deployed_stacks(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "stacks").glob("*.json"))

    def outputs(self, stack: str) -> StackOutputs:
        path = self.stack_file(stack)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            deployed = ", ".join(self.deployed_stacks()) or "none"
            raise RunnerError(
                f"stack '{stack}' is not deployed locally (deployed: {deployed}); "
                f"run `runner local up --stack {stack}`"
            ) from None
        return parse_outputs(stack, raw, str(path))
