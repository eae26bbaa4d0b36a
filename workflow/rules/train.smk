rule train:
    input:
        data=PATHS["dataset"],
        code=PACKAGE_FILES,
    output:
        directory(f"{PATHS['runs']}/{{experiment}}"),
    params:
        file=PATHS["params"],
        timings=PATHS["timings"],
        train=config["train"],
        histogram_freq=config["events"]["histogram_freq"],
        experiment=experiment_params,
    threads: 1
    resources:
        gpu=1,
    log:
        log_path("train/{experiment}"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad train --params {params.file} --experiment {wildcards.experiment} --data {input.data}"
        " --out {output} --threads {threads} --timings {params.timings} > {log} 2>&1"


rule gradients:
    input:
        runs=f"{PATHS['runs']}/{{experiment}}",
        code=PACKAGE_FILES,
    output:
        directory(f"{PATHS['tables']}/{{experiment}}"),
    params:
        file=PATHS["params"],
        timings=PATHS["timings"],
        seeds=config["train"]["seeds"],
    log:
        log_path("gradients/{experiment}"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad gradients --params {params.file} --experiment {wildcards.experiment} --runs {input.runs}"
        " --out {output} --timings {params.timings} > {log} 2>&1"
