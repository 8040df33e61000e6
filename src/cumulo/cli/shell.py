"""``cumulo shell``: CloudMonkey's interactive mode, with history and tab completion.

A line is what follows ``cumulo`` on the command line (``list zones``, ``-o json list
hosts``, ``api listApis name=login``), plus ``set output <format>``, ``set profile <name>``,
``sync``, ``help …`` and ``exit``. Completion is the same function the bash and zsh scripts
use; the history is kept per user, 0600.
"""

from __future__ import annotations

import contextlib
import os
import readline
import shlex
import sys
from collections.abc import Callable
from typing import Any

from cumulo.cli import apicache, apicmd, completion, output
from cumulo.cli.profiles import OUTPUTS, ProfileError, active_profile, config_dir

Runner = Callable[[list[str], apicmd.Options], int]


class Shell:
    def __init__(self, opts: apicmd.Options, run: Runner) -> None:
        """``run`` executes one command line as ``cumulo`` would (client_commands.run)."""
        self.opts = opts
        self.run = run
        self.catalogue: apicache.Catalogue | None = None
        self.matches: list[str] = []

    def prompt(self) -> str:
        try:
            name = active_profile(self.opts.profile).name
        except ProfileError:
            name = "?"
        return f"({name}) cumulo> "

    def _load(self) -> None:
        try:
            profile, client = apicmd.connect(self.opts.profile)
            self.catalogue = apicache.load(client, profile.name)
            self._client = client
        except Exception as err:  # the shell stays usable; commands will say what is wrong
            print(f"cumulo: {err}", file=sys.stderr)

    def _live(self, api: str, params: dict[str, str]) -> list[dict[str, Any]]:
        answer = self._client.call(api, **params)
        return output.rows_of(answer)[1] if answer else []

    def complete(self, text: str, state: int) -> str | None:
        if state == 0:
            line = readline.get_line_buffer()[: readline.get_endidx()]
            found = completion.candidates("cumulo " + line, self.catalogue, self._live)
            self.matches = [word for word, _ in found]
            if len(self.matches) == 1 and not self.matches[0].endswith("="):
                self.matches[0] += " "
        return self.matches[state] if state < len(self.matches) else None

    def one(self, line: str) -> int:
        words = shlex.split(line)
        if not words:
            return 0
        if words[0] in ("exit", "quit"):
            raise EOFError
        if words[0] == "set" and len(words) == 3 and words[1] == "output":
            if words[2] not in OUTPUTS:
                print(f"output must be one of {', '.join(OUTPUTS)}", file=sys.stderr)
                return apicmd.USAGE
            self.opts.output = words[2]
            return 0
        if words[0] == "set" and len(words) == 3 and words[1] == "profile":
            self.opts.profile = words[2]
            self._load()
            return 0
        code = self.run(words, self.opts)
        if words[0] == "sync":
            self._load()
        return code

    def loop(self) -> int:
        history = config_dir() / "history"
        history.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
        readline.set_completer_delims(" \t\n")
        readline.set_completer(self.complete)
        readline.parse_and_bind("tab: complete")
        self._load()
        code = 0
        try:
            while True:
                try:
                    line = input(self.prompt())
                except KeyboardInterrupt:
                    print()
                    continue
                try:
                    code = self.one(line)
                except ValueError as err:  # shlex: an open quote
                    print(f"cumulo: {err}", file=sys.stderr)
        except EOFError:
            print()
        finally:
            readline.write_history_file(history)
            os.chmod(history, 0o600)
        return code
