rule metrics:
    input:
        tables=[manifest("gradients", study) for study in STUDIES],
        code=stage_code("metrics"),
    output:
        manifest("metrics"),
    params:
        file=PATHS["params"],
        tables=PATHS["tables"],
        out=PATHS["metrics"],
        plots=PATHS["plots"],
        manifests=folder_of_output,
        timings=PATHS["timings"],
        events=config["events"],
        studies=config["studies"],
    log:
        log_path("metrics"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad metrics --params {params.file} --tables {params.tables} --out {params.out} --plots {params.plots}"
        " --manifests {params.manifests} --timings {params.timings} > {log} 2>&1"


rule report:
    input:
        notebook=PATHS["notebook"],
        upstream=[manifest(stage) for stage in ("params", "data", "metrics")],
        studies=[manifest(stage, study) for stage in ("train", "gradients") for study in STUDIES],
        code=stage_code("report"),
    output:
        manifest("report"),
    params:
        file=PATHS["params"],
        out=PATHS["report"],
        paths=PATHS,
        manifests=folder_of_output,
    log:
        log_path("report"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad report --params {params.file} --notebook {input.notebook} --out {params.out}"
        " --in-params {params.paths[resolved_params]} --in-dataset {params.paths[dataset]}"
        " --in-dataset-plot {params.paths[dataset_plot]} --in-tables {params.paths[tables]}"
        " --in-metrics {params.paths[metrics]} --in-plots {params.paths[plots]} --in-runs {params.paths[runs]}"
        " --in-timings {params.paths[timings]} --manifests {params.manifests} --timings {params.paths[timings]}"
        " > {log} 2>&1"
