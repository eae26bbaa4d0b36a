# The vanishing-gradients study. Rules live in workflow/rules; paths in workflow/paths.yaml;
# every parameter in params.yaml, validated before any job starts. Run: snakemake --cores 4
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:  # the manifests of the report and the metrics: Snakemake's outputs (common.smk, `manifest`)
    input:
        manifest("report"),
        manifest("metrics"),
