rule params:
    input:
        params=PATHS["params"],
        code=stage_code("params"),
    output:
        manifest("params"),
    params:
        out=PATHS["resolved_params"],
        manifests=folder_of_output,
        timings=PATHS["timings"],
    log:
        log_path("params"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad params --params {input.params} --out {params.out} --manifests {params.manifests}"
        " --timings {params.timings} > {log} 2>&1"


rule data:
    input:
        code=stage_code("data"),
    output:
        manifest("data"),
    params:
        file=PATHS["params"],
        csv=PATHS["dataset"],
        plot=PATHS["dataset_plot"],
        manifests=folder_of_output,
        timings=PATHS["timings"],
        data=config["data"],
    log:
        log_path("data"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad data --params {params.file} --out-csv {params.csv} --out-plot {params.plot}"
        " --manifests {params.manifests} --timings {params.timings} > {log} 2>&1"
