rule train:
    input:
        data=PATHS["dataset"],
        code=stage_code("train"),
    output:
        directory(f"{PATHS['runs']}/{{study}}"),
    params:
        file=PATHS["params"],
        timings=PATHS["timings"],
        train=config["train"],
        events=RUN_EVENTS,
        study=study_params,
    threads: 1
    resources:
        gpu=1,
    log:
        log_path("train/{study}"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:  # VGRAD_DIE_WITH: the trainer stops if this Snakemake is killed (bash's parent)
        "VGRAD_DIE_WITH=$PPID vgrad train --params {params.file} --study {wildcards.study} --data {input.data}"
        " --out {output} --threads {threads} --timings {params.timings} > {log} 2>&1"


rule gradients:
    input:
        runs=f"{PATHS['runs']}/{{study}}",
        code=stage_code("gradients"),
    output:
        directory(f"{PATHS['tables']}/{{study}}"),
    params:
        file=PATHS["params"],
        timings=PATHS["timings"],
        events=RUN_EVENTS,
    log:
        log_path("gradients/{study}"),
    conda:
        "../envs/vanishing-gradients.yaml"
    shell:
        "vgrad gradients --params {params.file} --study {wildcards.study} --runs {input.runs}"
        " --out {output} --timings {params.timings} > {log} 2>&1"
