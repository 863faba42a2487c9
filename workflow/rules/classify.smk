rule train_judge:
    input:
        class_list=rules.manifest.output.class_list,
        real=rules.features.output.features,
        split=rules.split.output.split,
    output:
        weights=judge_files("model.safetensors", "{split}"),
        metrics=judge_files("metrics.json", "{split}"),
        held_out=judge_files("held_out.csv", "{split}"),
    log:
        log_for("train_judge", "{split}"),
    benchmark:
        benchmark_for("train_judge", "{split}")
    conda:
        "../../envs/diffaug.yaml"
    threads: THREADS["train_classifier"]
    resources:
        **resources_for("train_judge", mem_mb=4000, runtime=240),
        gpu=gpus("classifier"),
    params:
        classifier=CLASSIFIER,
        seed=FIRST_SEED,
    script:
        "../../scripts/train_judge.py"


rule train_classifier:
    input:
        class_list=rules.manifest.output.class_list,
        real=rules.features.output.features,
        split=rules.split.output.split,
        generated=generated_features,
    output:
        weights=seed_files("model.safetensors"),
        metrics=seed_files("metrics.json"),
        description=seed_files("model.json"),
    log:
        log_for("train_classifier", "{split}/{arm}"),
    benchmark:
        benchmark_for("train_classifier", "{split}/{arm}")
    conda:
        "../../envs/diffaug.yaml"
    threads: THREADS["train_classifier"]
    resources:
        **resources_for("train_classifier", mem_mb=4000, runtime=240),
        gpu=gpus("classifier"),
    params:
        classifier=CLASSIFIER,
        features=FEATURES,
        specaugment=specaugment,
        seeds=config["seeds"],
        generated_sets=generated_sets,
    script:
        "../../scripts/train_classifier.py"
