rule metrics:
    input:
        tables=expand(f"{PATHS['tables']}/{{study}}", study=STUDIES),
        code=stage_code("metrics"),
    output:
        metrics=PATHS["metrics"],
        plots=directory(PATHS["plots"]),
    params:
        file=PATHS["params"],
        timings=PATHS["timings"],
        tables=parent_of("tables"),
        events=config["events"],
        studies=config["studies"],
    log:
        log_path("metrics"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad metrics --params {params.file} --tables {params.tables} --out {output.metrics}"
        " --plots {output.plots} --timings {params.timings} > {log} 2>&1"


rule report:
    input:
        notebook=PATHS["notebook"],
        params=PATHS["resolved_params"],
        dataset=PATHS["dataset"],
        dataset_plot=PATHS["dataset_plot"],
        metrics=PATHS["metrics"],
        plots=PATHS["plots"],
        tables=expand(f"{PATHS['tables']}/{{study}}", study=STUDIES),
        runs=expand(f"{PATHS['runs']}/{{study}}", study=STUDIES),
        code=stage_code("report"),
    output:
        PATHS["report"],
    params:
        file=PATHS["params"],
        timings=PATHS["timings"],
        tables=parent_of("tables"),
        runs=parent_of("runs"),
    log:
        log_path("report"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad report --params {params.file} --notebook {input.notebook} --out {output}"
        " --in-params {input.params} --in-dataset {input.dataset} --in-dataset-plot {input.dataset_plot}"
        " --in-tables {params.tables} --in-metrics {input.metrics} --in-plots {input.plots}"
        " --in-runs {params.runs} --in-timings {params.timings} --timings {params.timings} > {log} 2>&1"
