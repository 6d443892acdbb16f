# SRDA benchmark: the paper's protocol from volumes to tables. Logic lives in the `srda` package;
# each rule is one `srda-bench` call. Run `snakemake --cores all [--config preset=smoke]`.
import sys

from snakemake.utils import min_version, validate

min_version("8.0")

sys.path.insert(
    0, workflow.basedir
)  # srda.config must import where srda is not installed


configfile: "config.yaml"


# Defaults are filled by srda.config beneath the preset, so validation here must not add them.
validate(config, "workflow/schemas/config.schema.yaml", set_default=False)


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(map(re.escape, CFG["datasets"])),
    method="[a-z0-9_]+",
    scale=r"\d+",
    seed=r"\d+",
    split="|".join(SPLITS),


include: "workflow/rules/data.smk"
include: "workflow/rules/sr.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/report.smk"


rule tables:
    input:
        all_tables(),


rule all:
    default_target: True
    input:
        rules.tables.input,
