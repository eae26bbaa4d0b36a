rule params:
    input:
        params=PATHS["params"],
        code=stage_code("params"),
    output:
        PATHS["resolved_params"],
    params:
        timings=PATHS["timings"],
    log:
        log_path("params"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad params --params {input.params} --out {output} --timings {params.timings} > {log} 2>&1"


rule data:
    input:
        code=stage_code("data"),
    output:
        csv=PATHS["dataset"],
        plot=PATHS["dataset_plot"],
    params:
        file=PATHS["params"],
        timings=PATHS["timings"],
        data=config["data"],
    log:
        log_path("data"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad data --params {params.file} --out-csv {output.csv} --out-plot {output.plot}"
        " --timings {params.timings} > {log} 2>&1"
