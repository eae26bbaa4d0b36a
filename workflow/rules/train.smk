rule train:
    input:
        data=manifest("data"),
        code=stage_code("train"),
    output:
        manifest("train", "{study}"),
    params:
        file=PATHS["params"],
        data=PATHS["dataset"],
        out=f"{PATHS['runs']}/{{study}}",
        manifests=folder_of_output,
        timings=PATHS["timings"],
        train=config["train"],
        events=RUN_EVENTS,
        study=study_params,
    threads: 1
    priority: train_priority
    resources:
        gpu=1,
    log:
        log_path("train/{study}"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad train --params {params.file} --study {wildcards.study} --data {params.data} --out {params.out}"
        " --threads {threads} --manifests {params.manifests} --timings {params.timings} > {log} 2>&1"


rule gradients:
    input:
        runs=manifest("train", "{study}"),
        code=stage_code("gradients"),
    output:
        manifest("gradients", "{study}"),
    params:
        file=PATHS["params"],
        runs=f"{PATHS['runs']}/{{study}}",
        out=f"{PATHS['tables']}/{{study}}",
        manifests=folder_of_output,
        timings=PATHS["timings"],
        events=RUN_EVENTS,
    log:
        log_path("gradients/{study}"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad gradients --params {params.file} --study {wildcards.study} --runs {params.runs} --out {params.out}"
        " --manifests {params.manifests} --timings {params.timings} > {log} 2>&1"
