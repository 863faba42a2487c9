rule train_classifier:
    input:
        real=rules.features.output.features,
        generated=generated_features,
    output:
        weights=f"{R}/models/{{split}}/{{variant}}/seed{{seed}}/model.safetensors",
        metrics=f"{R}/models/{{split}}/{{variant}}/seed{{seed}}/metrics.json",
    params:
        classifier=config["classifier"],
        specaugment=specaugment,
    log:
        log_for("train_classifier", "/{split}/{variant}/seed{seed}"),
    benchmark:
        benchmark_for("train_classifier", "/{split}/{variant}/seed{seed}")
    threads: THREADS.get("train_classifier", 1)
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../../envs/diffaug.yaml"
    script:
        "../../scripts/train_classifier.py"
