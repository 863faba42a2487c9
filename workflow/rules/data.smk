if LAYOUT == "synthetic" or config["dataset"]["download"]:

    rule prepare_dataset:
        output:
            metadata=METADATA,
        log:
            log_for("prepare_dataset"),
        benchmark:
            benchmark_for("prepare_dataset")
        localrule: True
        conda:
            "../../envs/diffaug.yaml"
        threads: THREADS["prepare_dataset"]
        resources:
            **resources_for("prepare_dataset", mem_mb=2000, runtime=120),
        params:
            dataset=PREPARE,
        script:
            "../../scripts/prepare_dataset.py"


rule manifest:
    input:
        dataset=METADATA,
    output:
        manifest=f"{R}/data/manifest.csv",
        rejected=f"{R}/data/rejected.csv",
        class_list=f"{R}/data/classes.txt",
    log:
        log_for("manifest"),
    benchmark:
        benchmark_for("manifest")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("manifest", mem_mb=2000, runtime=30),
    params:
        dataset=MANIFEST,
    script:
        "../../scripts/manifest.py"


rule split:
    input:
        manifest=rules.manifest.output.manifest,
    output:
        split=f"{R}/splits/{{split}}.json",
    log:
        log_for("split", "{split}"),
    benchmark:
        benchmark_for("split", "{split}")
    localrule: True
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("split", mem_mb=1000, runtime=10),
    params:
        protocol=split_params(WRITTEN["protocol"]),
    script:
        "../../scripts/split.py"
