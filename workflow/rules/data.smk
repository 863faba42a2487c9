if SOURCE == "synthetic" or config["dataset"].get("download"):

    rule prepare_dataset:
        output:
            metadata=METADATA,
        params:
            dataset=config["dataset"],
        log:
            log_for("prepare_dataset"),
        benchmark:
            benchmark_for("prepare_dataset")
        threads: 1
        resources:
            mem_mb=2000,
            runtime=120,
        conda:
            "../../envs/diffaug.yaml"
        script:
            "../../scripts/prepare_dataset.py"


rule manifest:
    input:
        metadata=METADATA,
    output:
        manifest=f"{R}/data/manifest.csv",
    log:
        log_for("manifest"),
    benchmark:
        benchmark_for("manifest")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/diffaug.yaml"
    script:
        "../../scripts/manifest.py"


rule split:
    input:
        manifest=rules.manifest.output.manifest,
    output:
        split=f"{R}/splits/{{split}}.json",
    params:
        protocol=config["protocol"],
    log:
        log_for("split", "/{split}"),
    benchmark:
        benchmark_for("split", "/{split}")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/diffaug.yaml"
    script:
        "../../scripts/split.py"
