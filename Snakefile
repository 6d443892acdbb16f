# SRDA benchmark: the paper's protocol from volumes to tables. Logic lives in the `srda` package;
# each rule is one `srda-bench` call. Run `snakemake --cores all [--config preset=smoke]`.
import sys

from snakemake.utils import min_version

min_version("8.0")

# srda.config must import where srda is not installed (the Snakefile runs outside the envs).
sys.path.insert(0, workflow.basedir)


configfile: "config.yaml"


# The configuration is validated against workflow/schemas/config.schema.yaml, with the preset
# and the schema's defaults merged beneath it, by srda.config.resolve (workflow/rules/common.smk).
include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(map(re.escape, CFG["datasets"])),
    method="[a-z0-9_]+",
    scale=r"\d+",
    seed=r"\d+",
    split="|".join(SPLITS),
    deg=deg_values([BICUBIC, *MADE_DEGRADATIONS]),


include: "workflow/rules/data.smk"
include: "workflow/rules/sr.smk"
include: "workflow/rules/crossfit.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/diagnosis.smk"
include: "workflow/rules/report.smk"


# The leakage study loads this Snakefile again as a module: only the main workflow includes it.
if workflow.modifier.is_main_snakefile():

    include: "workflow/rules/leakage.smk"


report: "workflow/report/workflow.rst"


# Targets: `snakemake tables`, `snakemake figures` (a rule of report.smk), or everything.
rule tables:
    input:
        all_tables(),


rule all:
    default_target: True
    input:
        rules.tables.input,
        rules.figures.output,
        rules.provenance.output,
