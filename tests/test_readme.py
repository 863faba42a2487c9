"""The README's rule table against the rule files, and its table of what a change reruns."""

import re

import yaml
from helpers import README, ROOT, readme_rules, rerun_table


def rule_files() -> dict[str, str]:
    """{rule: the file under workflow/rules/ that defines it}."""
    return {
        rule: path.name
        for path in (ROOT / "workflow" / "rules").glob("*.smk")
        for rule in re.findall(r"^\s*rule (\w+):", path.read_text(), re.M)
    }


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
