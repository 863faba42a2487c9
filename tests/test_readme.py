"""The README's rule table against the rule files, and its table of what a change reruns."""

import re

import yaml
from conftest import ROOT

README = (ROOT / "README.md").read_text()


def readme_rules() -> dict[str, tuple[str, set[str]]]:
    """{rule: (its file, the rules it reads)} from the table under "What runs", in its order; in the
    "reads" cell words in parentheses are notes, and `a or b` names both."""
    section = README.split("## What runs", 1)[1].split("\n## ", 1)[0]
    rules = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].endswith(".smk`"):
            rule, file, reads = cells[0].split()[0].strip("`"), cells[1].strip("`"), cells[2]
            names = re.split(r",| or ", re.sub(r"\([^)]*\)", "", reads))
            rules[rule] = (file, {name.strip(" `") for name in names if name.strip(" `")})
    return rules


def rule_files() -> dict[str, str]:
    """{rule: the file under workflow/rules/ that defines it}."""
    return {
        rule: path.name
        for path in (ROOT / "workflow" / "rules").glob("*.smk")
        for rule in re.findall(r"^\s*rule (\w+):", path.read_text(), re.M)
    }


def rerun_table():
    """(change, {rule: count or None}) rows of the README's table of what a change reruns."""
    text = README.split("### What a change reruns", 1)[1]
    rows = []
    for line in text.splitlines():
        match = re.fullmatch(r"\| `(\{?[a-z_]+: .*)` \| (.*) \|", line.strip())
        if match:
            jobs = {}
            for item in match[2].removeprefix("everything: ").split(", "):
                name, _, count = item.partition(" ×")
                jobs[name] = int(count) if count else 1
            rows.append((match[1], jobs))
    return rows


def test_each_rule_is_defined_in_the_file_the_readme_names():
    assert {rule: file for rule, (file, _) in readme_rules().items()} == rule_files()


def test_the_readme_lists_each_rule_after_the_rules_it_reads():
    listed = []
    for rule, (_, reads) in readme_rules().items():
        assert reads <= set(listed), f"{rule} reads {reads - set(listed)}, listed later or not at all"
        listed.append(rule)


def test_the_readme_rerun_table_is_complete():
    changed = {yaml.safe_load(change).popitem()[0] for change, _ in rerun_table()}
    assert changed == {"dataset", "protocol", "features", "diffusion", "generate", "classifier", "specaugment"}


def test_the_layout_section_names_every_module_with_its_job():
    section = README.split("## Layout", 1)[1]
    named = {
        name for row in re.findall(r"^\| (`[^|]+`) \| \S", section, re.M) for name in re.findall(r"`(\w+\.py)`", row)
    }
    modules = {path.name for path in (ROOT / "src" / "diffaug").glob("*.py")}
    assert named == modules, f"missing: {sorted(modules - named)}, gone: {sorted(named - modules)}"
