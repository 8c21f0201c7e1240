"""The documentation is true: its examples run, its tables follow the code, its options exist, its links resolve.

Refresh the generated parts (class and event tables, the README's terminal output) after a deliberate
change with `WEAVEPCAP_UPDATE_DOCS=1 python -m pytest tests/test_docs.py`, then review the diff.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from support.build import ethernet, ipv4
from support.writers import write_pcap

from weavepcap.classes import CLASSES
from weavepcap.cli import app
from weavepcap.detect import EVENTS
from weavepcap.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOC_FILES = [README, *sorted(DOCS.glob("*.md"))]
UPDATE = bool(os.environ.get("WEAVEPCAP_UPDATE_DOCS"))
COMMAND_TIMEOUT_S = 300

# Examples that are not run here, each with the reason. A new example is either run (its programs are in
# RUNNABLE_PROGRAMS) or listed here: the test fails on anything else.
EXCLUDED: dict[str, str] = {
    "pip install -e '.[test]' && python -m pytest -q":
        "the test suite itself, which this test is part of; CI (.ci/run) runs it",
    "tcpdump -i any -w - | weavepcap classify node-1=-":
        "captures live traffic until interrupted; standard input is run by the gzip example",
    "weavepcap batch samples/ --out results/ --scheduler tcp://dask-scheduler:8786":
        "needs a running dask.distributed scheduler; tests/test_batch_dask.py runs batch on a LocalCluster",
    "sudo python3 samples/lab/lab.py":
        "re-records every sample: root, network namespaces, minutes; tests/test_lab.py re-records three in CI",
    "sudo python3 samples/lab/lab.py --only p2-router --out lab-out":
        "re-records a sample: root and network namespaces; tests/test_lab.py re-records three in CI",
    "python benchmarks/make_capture.py":
        "a benchmark: writes a 1.76 GB capture; speed is measured, never run in the suite",
    "python benchmarks/bench_classify.py --profile":
        "a benchmark: minutes of CPU on a 1.76 GB capture",
    "python benchmarks/bench_classify.py --frames 200000 --skip tshark":
        "a benchmark: speed is measured in benchmarks/, never in the suite",
    'chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking '
    '--disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --hide-scrollbars '
    '--force-device-scale-factor=0.8 --window-size=1100,760 --screenshot=docs/report-screenshot.png '
    '"file://$PWD/reports/p2-router.html"':
        "rewrites the committed screenshot; tests/test_browser_report.py renders the reports in Chromium",
}
# The set-up part of an example: not repeated (weavepcap runs from src/), the rest of the command is run.
SETUP_PREFIXES: dict[str, str] = {
    "pip install -e . && ": "installing is the set-up step; the tests run weavepcap from src/",
}
RUNNABLE_PROGRAMS = frozenset({"weavepcap", "cd", "gzip", "tar"})
EXCLUDED_PYTHON: dict[str, str] = {}  # first line of a python example -> why it is not run

COMMAND_PAGES = {"classify": "classify.md", "analyze": "analyze.md", "report": "report.md", "batch": "batch.md"}
# Options whose value is a file or directory the command writes (checked to exist after a run).
OUTPUT_OPTIONS = frozenset({"--html", "--json", "--timeline", "--plots", "--out", "-o"})
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


# --- reading the docs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence
    text: str

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Command:
    line: int
    text: str  # continuation lines joined, trailing comment removed
    expected_exit: int


def fenced_blocks(doc: Path, language: str) -> list[Block]:
    text = doc.read_text(encoding="utf-8")
    return [
        Block(doc, text.count("\n", 0, m.start()) + 1, m.group(1))
        for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.M | re.S)
    ]


def all_blocks(language: str) -> list[Block]:
    return [b for doc in DOC_FILES for b in fenced_blocks(doc, language)]


def commands(block: Block) -> list[Command]:
    """The block's commands: `\\` continuations joined, comments dropped; `# exit code N` sets the expected code."""
    out: list[Command] = []
    pending, start = "", 0
    for number, raw in enumerate(block.text.splitlines(), start=block.line + 1):
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1].rstrip() + " "
            continue
        line, pending = pending + raw, ""
        hash_mark = re.search(r"(?:^|\s)#(?:\s|$)", line)
        code = (line[:hash_mark.start()] if hash_mark else line).strip()
        comment = line[hash_mark.start():] if hash_mark else ""
        if not code:
            continue
        found = re.search(r"exit code (\d+)", comment)
        out.append(Command(start, " ".join(code.split()), int(found.group(1)) if found else 0))
    return out


def generated(text: str, name: str) -> tuple[int, int]:
    """Start and end offsets of the content between `<!-- generated:NAME ... -->` and `<!-- /generated:NAME -->`."""
    opening = re.search(rf"^<!-- generated:{name}\b.*?-->\n", text, re.M)
    closing = re.search(rf"^<!-- /generated:{name} -->$", text, re.M)
    assert opening and closing and opening.end() <= closing.start(), f"no generated:{name} block"
    return opening.end(), closing.start()


def check_generated(doc: Path, name: str, expected: str, normalise: Callable[[str], str] = lambda s: s) -> None:
    text = doc.read_text(encoding="utf-8")
    start, end = generated(text, name)
    if UPDATE:
        doc.write_text(text[:start] + expected + text[end:], encoding="utf-8")
        return
    assert normalise(text[start:end]) == normalise(expected), (
        f"{doc.relative_to(ROOT)}: the generated:{name} block is stale; refresh it with "
        "WEAVEPCAP_UPDATE_DOCS=1 python -m pytest tests/test_docs.py and review the diff"
    )


def markdown_table(text: str, after_heading: str) -> list[list[str]]:
    """Rows (cells stripped) of the first table after a heading, header and rule rows left out."""
    section = text[text.index(after_heading):]
    rows: list[list[str]] = []
    for line in section.splitlines()[1:]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append(cells)
        elif rows:
            break
    return rows[2:]


def table_cell_code(cell: str) -> str:
    found = re.fullmatch(r"`([^`]+)`", cell)
    assert found, f"expected one `code` span in the cell {cell!r}"
    return found.group(1)


# --- the command line ------------------------------------------------------------------------------------


@functools.cache
def cli() -> Any:
    """The click group behind `weavepcap --help` (typer may vendor its own click: duck-typed here)."""
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    return group


def _options(command: Any) -> list[Any]:
    return [p for p in command.params if getattr(p, "param_type_name", "") == "option"]


def option_names(command: Any) -> set[str]:
    return {n for p in _options(command) for n in (*p.opts, *p.secondary_opts)} - {"--help"}


def flag_names(command: Any) -> set[str]:
    return {n for p in _options(command) if p.is_flag for n in p.opts}


@dataclass(frozen=True)
class Invocation:
    command: str  # "" for the bare `weavepcap`
    options: list[str]  # as written
    positional: list[str]
    values: dict[str, str]  # option -> its value (last one wins)


def invocations(text: str) -> Iterator[Invocation]:
    """Every `weavepcap ...` call in a shell command line (pipelines and && lists included)."""
    try:
        tokens = shlex.split(text)
    except ValueError:
        return
    group = cli()
    stages: list[list[str]] = [[]]
    for token in tokens:
        if token in ("|", "&&", "||", ";"):
            stages.append([])
        else:
            stages[-1].append(token)
    for stage in stages:
        if stage[:1] != ["weavepcap"]:
            continue
        rest = stage[1:]
        name = rest[0] if rest and rest[0] in group.commands else ""
        command = group.commands[name] if name else group
        flags = flag_names(command)
        args = rest[1:] if name else rest
        options: list[str] = []
        positional: list[str] = []
        values: dict[str, str] = {}
        i = 0
        while i < len(args):
            token = args[i]
            if token == ">":
                values[">"] = args[i + 1]
                i += 2
                continue
            if token.startswith("-") and token != "-":
                option, _, inline = token.partition("=")
                options.append(option)
                if option not in flags:
                    if inline:
                        values[option] = inline
                    elif i + 1 < len(args):
                        values[option] = args[i + 1]
                        i += 1
            else:
                positional.append(token)
            i += 1
        yield Invocation(name, options, positional, values)


# --- running examples -------------------------------------------------------------------------------------


def scratch_checkout(tmp_path: Path) -> Path:
    """What a fresh clone offers an example: the samples and an empty reports/ (outputs stay in tmp_path)."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "samples", checkout / "samples", ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / "reports").mkdir()
    return checkout


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    env["WEAVEPCAP_PYTHON"] = sys.executable
    return env


def run_shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # `weavepcap` is this checkout's src/, whatever is installed; pipefail so a failing stage counts.
    script = 'set -o pipefail\nweavepcap() { "$WEAVEPCAP_PYTHON" -m weavepcap "$@"; }\n' + command + "\n"
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=environment(), capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)


def strip_setup(text: str) -> str:
    for prefix in SETUP_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def programs(text: str) -> set[str]:
    return {stage.split()[0] for stage in re.split(r"\s*(?:\|\||&&|\||;)\s*", text) if stage.strip()}


def expand_ellipsis(command: Command, first_weavepcap: Command | None, block: Block) -> str:
    """`...` in an example stands for the captures of the block's first weavepcap command."""
    if " ... " not in f" {command.text} ":
        return command.text
    assert first_weavepcap is not None, f"{block.name}: `...` without an earlier weavepcap command to stand for"
    call = next(invocations(first_weavepcap.text))
    captures = " ".join(shlex.quote(p) for p in call.positional)
    return re.sub(r"(?<=\s)\.\.\.(?=\s|$)", lambda _: captures, command.text)


def run_block(block: Block, tmp_path: Path) -> list[subprocess.CompletedProcess[str]]:
    cwd = scratch_checkout(tmp_path)
    first_weavepcap: Command | None = None
    done: list[subprocess.CompletedProcess[str]] = []
    for command in commands(block):
        if command.text in EXCLUDED:
            continue
        text = strip_setup(command.text)
        unknown = programs(text) - RUNNABLE_PROGRAMS
        assert not unknown, (
            f"{block.name} line {command.line}: `{command.text}` runs {sorted(unknown)}: run it (add the program "
            "to RUNNABLE_PROGRAMS) or list the example in EXCLUDED with the reason"
        )
        if text.startswith("cd "):
            cwd = (cwd / text[3:].strip()).resolve()
            assert cwd.is_dir(), f"{block.name} line {command.line}: no directory {text[3:]}"
            continue
        if first_weavepcap is None and text.startswith("weavepcap "):
            first_weavepcap = Command(command.line, text, command.expected_exit)
        text = expand_ellipsis(Command(command.line, text, command.expected_exit), first_weavepcap, block)
        result = run_shell(text, cwd)
        assert result.returncode == command.expected_exit, (
            f"{block.name} line {command.line}: `{text}` exited {result.returncode}, the docs say "
            f"{command.expected_exit}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
        )
        for call in invocations(text):
            for option, value in call.values.items():
                if option in OUTPUT_OPTIONS or option == ">":
                    assert (cwd / value).exists(), f"{block.name} line {command.line}: {option} {value} not written"
        done.append(result)
    return done


SH_BLOCKS = all_blocks("sh")
PYTHON_BLOCKS = all_blocks("python")


def test_the_docs_have_examples() -> None:
    assert len(SH_BLOCKS) >= 8 and len(PYTHON_BLOCKS) >= 2  # the parser still finds them


@pytest.mark.slow
@pytest.mark.parametrize("block", SH_BLOCKS, ids=lambda b: b.name)
def test_shell_example_runs_with_the_documented_exit_code(block: Block, tmp_path: Path) -> None:
    run_block(block, tmp_path)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.name)
def test_python_example_runs(block: Block, tmp_path: Path) -> None:
    first = block.text.splitlines()[0]
    if first in EXCLUDED_PYTHON:
        pytest.skip(EXCLUDED_PYTHON[first])
    cwd = scratch_checkout(tmp_path)
    result = subprocess.run([sys.executable, "-c", block.text], cwd=cwd, env=environment(), capture_output=True,
                            text=True, timeout=COMMAND_TIMEOUT_S)
    assert result.returncode == 0, f"{block.name}: {result.stderr[-3000:]}"


def test_every_exclusion_is_still_an_example() -> None:
    written = {c.text for b in SH_BLOCKS for c in commands(b)}
    assert set(EXCLUDED) <= written, f"stale exclusions: {sorted(set(EXCLUDED) - written)}"
    firsts = {b.text.splitlines()[0] for b in PYTHON_BLOCKS}
    assert set(EXCLUDED_PYTHON) <= firsts


def test_the_readme_opens_with_the_two_setup_commands() -> None:
    first = fenced_blocks(README, "sh")[0]
    text = README.read_text(encoding="utf-8")
    assert text.index("```sh") < text.index("\n## "), "the set-up commands come before any section"
    lines = [c.text for c in commands(first)]
    assert len(lines) == 2
    assert lines[0].startswith("pip install -e . && weavepcap analyze samples/p2-router/")
    assert lines[1] == "pip install -e '.[test]' && python -m pytest -q"


def readme_first_command() -> str:
    return strip_setup(commands(fenced_blocks(README, "sh")[0])[0].text)


def scrub_times(text: str) -> str:
    return ISO_TIME.sub("<time>", text)


def test_readme_terminal_output_is_what_the_first_command_prints(tmp_path: Path) -> None:
    result = run_shell(readme_first_command(), scratch_checkout(tmp_path))
    assert result.returncode == 0, result.stderr
    check_generated(README, "verdict", f"```text\n{result.stdout.rstrip()}\n```\n", scrub_times)


# --- tables that follow the code ---------------------------------------------------------------------------


def escape_cell(text: str) -> str:
    return text.replace("|", "\\|")


def test_classes_table_is_weavepcap_classes() -> None:
    rows = "".join(f"| `{name}` | {escape_cell(meaning)} |\n" for name, meaning in CLASSES.items())
    check_generated(DOCS / "classify.md", "classes", "| class | meaning |\n|---|---|\n" + rows)


def test_events_table_is_weavepcap_detect_events() -> None:
    rows = "".join(f"| `{name}` | {escape_cell(meaning)} |\n" for name, meaning in EVENTS.items())
    check_generated(DOCS / "analyze.md", "events", "| event | meaning |\n|---|---|\n" + rows)


def test_rule_table_lists_weavepcap_rules_in_order() -> None:
    rows = markdown_table((DOCS / "analyze.md").read_text(encoding="utf-8"), "## Verdicts")
    documented = [(table_cell_code(r[0]), r[1]) for r in rows]
    actual = [(r.id, r.kind) for r in RULES]
    assert documented == actual, (
        "docs/analyze.md's rule table must list weavepcap.rules.RULES in order (id, kind); "
        f"documented {documented}, RULES {actual}"
    )
    assert all(r[2] and r[3] for r in rows), "every rule row says when it fires and the fix (or —)"


# --- options ------------------------------------------------------------------------------------------------


def inline_code(text: str) -> list[str]:
    without_blocks = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return [span.replace("\\|", "|") for span in re.findall(r"`([^`\n]+)`", without_blocks)]


def documented_invocations(doc: Path) -> Iterator[tuple[str, Invocation]]:
    """Calls in sh examples, and inline code that starts with `weavepcap` or a command name."""
    commands_by_name = cli().commands
    for block in fenced_blocks(doc, "sh"):
        for command in commands(block):
            for call in invocations(command.text):
                yield f"{block.name} line {command.line}", call
    for span in inline_code(doc.read_text(encoding="utf-8")):
        first = span.split()[0] if span.split() else ""
        text = span if first == "weavepcap" else f"weavepcap {span}" if first in commands_by_name else ""
        for call in invocations(text.replace(" ...", "")):
            yield f"{doc.relative_to(ROOT)}: `{span}`", call


def test_every_command_and_option_is_documented() -> None:
    group = cli()
    everything = "\n".join(d.read_text(encoding="utf-8") for d in sorted(DOCS.glob("*.md")))
    for name in option_names(group):
        assert f"`weavepcap {name}`" in everything, f"docs/ do not mention `weavepcap {name}`"
    for name, command in group.commands.items():
        page = DOCS / COMMAND_PAGES.get(name, f"{name}.md")
        assert page.is_file(), f"`weavepcap {name}` has no page in docs/ (COMMAND_PAGES)"
        text = page.read_text(encoding="utf-8")
        spans = inline_code(text)
        called = {o for _, call in documented_invocations(page) if call.command == name for o in call.options}
        for option in option_names(command):
            in_span = any(re.match(rf"{re.escape(option)}(?![\w-])", s) for s in spans)
            assert in_span or option in called, f"{page.relative_to(ROOT)} does not document `weavepcap {name} {option}`"


def test_every_documented_option_exists() -> None:
    group = cli()
    for doc in DOC_FILES:
        for where, call in documented_invocations(doc):
            command = group.commands[call.command] if call.command else group
            unknown = [o for o in call.options if o not in option_names(command) | {"--help"}]
            assert not unknown, f"{where}: `weavepcap {call.command}` has no option {unknown}"
    for name, page in COMMAND_PAGES.items():  # bare `--option` spans on a command's own page
        known = option_names(group.commands[name])
        if name == "report":
            known |= option_names(group.commands["analyze"])  # the page documents analyze --html/--plots too
        for span in inline_code((DOCS / page).read_text(encoding="utf-8")):
            found = re.match(r"(--?[a-z][a-z0-9-]*)", span)
            if found:
                assert found.group(1) in known, f"docs/{page}: `{span}` is no option of weavepcap {name}"


# --- the JSON examples ------------------------------------------------------------------------------------------

# Maps whose keys are data, not a contract: only the keys around them are compared.
FREE_MAPS = {"classes", "facts", "attrs", "events", "fragment_trains"}


def json_examples(doc: Path) -> list[Any]:
    return [json.loads(b.text) for b in fenced_blocks(doc, "json")]


def shape(value: Any, path: str, seen: dict[str, set[str]]) -> None:
    """Every key seen at each path (list items share the path `[]`) across documents."""
    if isinstance(value, dict):
        keys = seen.setdefault(path, set())
        keys.update(value)
        if path.rsplit(".", 1)[-1] in FREE_MAPS:
            return
        for key, item in value.items():
            shape(item, f"{path}.{key}", seen)
    elif isinstance(value, list):
        for item in value:
            shape(item, f"{path}[]", seen)


def compare_keys(example: Any, seen: dict[str, set[str]], path: str = "") -> list[str]:
    problems: list[str] = []
    if isinstance(example, dict):
        name = path.rsplit(".", 1)[-1]
        if name in FREE_MAPS:
            return problems
        if path not in seen:
            return [f"{path or '.'}: no command output has this object"]
        if set(example) != seen[path]:
            problems.append(f"{path or '.'}: docs {sorted(example)} vs output {sorted(seen[path])}")
        for key, item in example.items():
            problems += compare_keys(item, seen, f"{path}.{key}")
    elif isinstance(example, list):
        for item in example:
            if isinstance(item, dict | list):
                problems += compare_keys(item, seen, f"{path}[]")
    return problems


def oddities_capture(path: Path) -> Path:
    """ESP between two hosts with no other Weave traffic (an `uncertain` entry), then a cut-short record."""
    esp = ethernet(ipv4(bytes(40), src="192.0.2.1", dst="192.0.2.2", proto=50))
    write_pcap(path, [esp, esp])
    path.write_bytes(path.read_bytes()[:-10])
    return path


def test_json_examples_have_the_keys_the_commands_print(tmp_path: Path) -> None:
    checkout = scratch_checkout(tmp_path)
    odd = oddities_capture(checkout / "odd.pcap")
    classify_docs = [
        run_shell(f"weavepcap classify --format json {captures}", checkout)
        for captures in ("samples/p2-router/host-a-eth0.pcap samples/ipv6-ptb/host-a-eth0.pcap", odd.name)
    ]
    assert [r.returncode for r in classify_docs] == [0, 0], [r.stderr for r in classify_docs]
    lo = checkout / "samples" / "p2-router" / "host-b-lo.pcap"
    lo.write_bytes(lo.read_bytes()[:-10])  # damage[] entries
    analyze_doc = run_shell("cd samples/p2-router && weavepcap analyze --format json host-a=host-a-eth0.pcap "
                            "host-a=host-a-lo.pcap host-b=host-b-eth0.pcap host-b=host-b-lo.pcap", checkout)
    assert analyze_doc.returncode == 0, analyze_doc.stderr
    outputs = {"classify": [json.loads(r.stdout) for r in classify_docs], "analyze": [json.loads(analyze_doc.stdout)]}
    examples = json_examples(DOCS / "json.md")
    assert len(examples) == 2, "docs/json.md: the classify example, then the analyze shape"
    problems: list[str] = []
    for (name, docs), example in zip(outputs.items(), examples, strict=True):
        seen: dict[str, set[str]] = {}
        for doc in docs:
            shape(doc, "", seen)
        problems += [f"{name} {p}" for p in compare_keys(example, seen)]
    assert not problems, "docs/json.md differs from the output:\n" + "\n".join(problems)
    assert set(examples[0]["captures"][0]["classes"]) - {"…"} <= set(CLASSES)
    assert set(examples[1]["events"]) <= set(EVENTS)


# --- links ---------------------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda d: str(d.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.M | re.S)
    links = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    assert links, "the parser still finds links"
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # http(s):, mailto: — not ours to check offline
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.relative_to(ROOT)}: link {link} points nowhere"
        assert ROOT in path.parents or path == ROOT, f"{doc.relative_to(ROOT)}: link {link} leaves the repository"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{doc.relative_to(ROOT)}: {link}: no heading #{anchor}"
