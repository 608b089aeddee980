"""A scripted runner for exact-sequence tests of operations: it answers commands by
the words they contain (first rule that matches), records every call, and refuses a
command nobody scripted, so a test sees every command an operation runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from plano.core.runner import Result
from plano.core.session import Session


@dataclass(frozen=True)
class Answer:
    code: int = 0
    out: str = ""
    err: str = ""


OK = Answer()


@dataclass
class Rule:
    words: tuple[str, ...]
    answers: list[Answer]
    query: bool = False  # a query: it runs in a dry run too
    used: int = 0

    def matches(self, argv: list[str]) -> bool:
        n = len(self.words)
        return any(tuple(argv[i:i + n]) == self.words for i in range(len(argv) - n + 1))

    def next(self) -> Answer:
        answer = self.answers[min(self.used, len(self.answers) - 1)]
        self.used += 1
        return answer


@dataclass(frozen=True)
class Call:
    argv: list[str]
    stdin: str | None
    env: dict[str, str] | None
    streamed: bool
    query: bool


@dataclass
class ScriptedRunner:
    rules: list[Rule] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def on(self, *words: str, answers: Answer | list[Answer] = OK, query: bool = False) -> ScriptedRunner:
        """Answer commands holding `words` (in a row); a list answers call after call, its last one repeating."""
        self.rules.append(Rule(words, answers if isinstance(answers, list) else [answers], query))
        return self

    def query(self, *words: str, answers: Answer | list[Answer] = OK) -> ScriptedRunner:
        return self.on(*words, answers=answers, query=True)

    def answer(self, argv: list[str], stdin, env, streamed: bool) -> Answer:
        for rule in self.rules:
            if rule.matches(argv):
                self.calls.append(Call(list(argv), stdin, env, streamed, rule.query))
                return rule.next()
        raise AssertionError(f"unscripted command: {argv}")

    def run(self, argv: list[str], cwd: Path | None = None, timeout: float | None = None,
            stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
        got = self.answer(argv, stdin, env, streamed=False)
        return Result(list(argv), got.code, got.out, got.err)

    def stream(self, argv: list[str], cwd: Path | None = None, stdin: str | None = None,
               env: dict[str, str] | None = None) -> int:
        return self.answer(argv, stdin, env, streamed=True).code

    @property
    def actions(self) -> list[list[str]]:
        return [call.argv for call in self.calls if not call.query]

    @property
    def queries(self) -> list[list[str]]:
        return [call.argv for call in self.calls if call.query]


@dataclass
class RecordingOutput:
    infos: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)

    def info(self, text: str) -> None:
        self.infos.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def planned(self, text: str) -> None:
        self.plans.append(text)


def session(root: Path, runner: ScriptedRunner, mode=None, dry_run: bool = False) -> Session:
    made = Session(runner, RecordingOutput(), directory=root, dry_run=dry_run, sleep=lambda _: None)
    return made.with_mode(mode) if mode is not None else made


def engine(runner: ScriptedRunner) -> ScriptedRunner:
    """The queries every stack operation starts with: compose found, the engine answers."""
    return runner.query("compose", "version").query("version").query("docker", "info")


def made_infra(where: Path, edit: Callable[[str], str] = lambda text: text) -> Session:
    """An infra made by plano itself (`init`, registry.example.com/acme), its plano.yml
    passed through `edit`; the session to add apps with."""
    from plano.ops import infra

    # no nginx runs: render reloads none (ops.infra.reload_running_nginx)
    made = session(where, ScriptedRunner().on("git").query("docker", "ps", "--filter", "label=com.docker.compose.service=nginx"))
    infra.init(made, where, "registry.example.com/acme", "ops@example.com", "acme", False)
    (where / "plano.yml").write_text(edit((where / "plano.yml").read_text()))
    made.reload()
    return made
