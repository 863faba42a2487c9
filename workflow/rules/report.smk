# The loss curves of diffusion training, where the run trains diffusion models.
DIFFUSION_TRAINING = {
    "diffusion_training": report(plot, caption="../report/diffusion_training.rst", category="Training")
    for plot in diffusion_training_plots()
}
# The distributions of how new the scored clips are, where arms add generated clips.
NOVELTY = (
    {"novelty": report(f"{R}/plots/novelty.png", caption="../report/novelty.rst", category="Generated clips")}
    if ARM_GENERATORS
    else {}
)


rule novelty:
    input:
        class_list=rules.manifest.output.class_list,
        real=rules.features.output.features,
        split=rules.split.output.split,
        pairs=expand(rules.pairs.output.pairs, generated_set=range(GENERATED_SETS), allow_missing=True),
        scored=scored_of_split,
        judges=judges,
    output:
        novelty=f"{R}/novelty/{{split}}.csv",
    log:
        log_for("novelty", "{split}"),
    benchmark:
        benchmark_for("novelty", "{split}")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("novelty", mem_mb=8000, runtime=60),
        gpu=gpus("classifier"),
    params:
        classifier=CLASSIFIER,
        in_db=config["features"]["log"],
    script:
        "../../scripts/novelty.py"


rule report:
    input:
        metrics=all_metrics(),
        scores=all_scores(),
        judges=all_judge_files("metrics.json"),
        held_out=all_judge_files("held_out.csv"),
        novelty=all_novelty_files(),
        records=all_generation_records(),
        rejected=rules.manifest.output.rejected,
    output:
        **DIFFUSION_TRAINING,
        **NOVELTY,
        table=report(f"{R}/tables/accuracy.csv", caption="../report/accuracy_table.rst", category="Accuracy"),
        pivot=report(f"{R}/tables/gain_pivot.csv", caption="../report/gain_pivot.rst", category="Accuracy"),
        markdown=f"{R}/tables/accuracy.md",
        per_class=report(f"{R}/tables/per_class.csv", caption="../report/per_class.rst", category="Accuracy"),
        fidelity=report(
            f"{R}/tables/class_fidelity.csv", caption="../report/class_fidelity.rst", category="Generated clips"
        ),
        runtimes=report(f"{R}/tables/runtimes.csv", caption="../report/runtimes.rst", category="Runs"),
        plot=report(f"{R}/plots/accuracy.png", caption="../report/accuracy.rst", category="Accuracy"),
        labelled_plot=report(
            f"{R}/plots/accuracy_vs_labelled.png", caption="../report/accuracy_vs_labelled.rst", category="Accuracy"
        ),
        confusion=report(f"{R}/plots/confusion.png", caption="../report/confusion.rst", category="Accuracy"),
        classifier_training=report(
            f"{R}/plots/classifier_training.png", caption="../report/classifier_training.rst", category="Training"
        ),
    log:
        log_for("report"),
    benchmark:
        benchmark_for("report")
    localrule: True
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("report", mem_mb=2000, runtime=10),
    params:
        protocol=WRITTEN["protocol"],
        dataset=LAYOUT,
        generated_sets=GENERATED_SETS,
    script:
        "../../scripts/report.py"


rule plot_examples:
    input:
        manifest=rules.manifest.output.manifest,
        split=rules.split.output.split,
        classes=class_dirs("generated", "{split}", 0),
        model=diffusion_model,
    output:
        plot=report(
            f"{R}/plots/examples_{{split}}.png",
            caption="../report/examples.rst",
            category="Generated clips",
            labels={"split": "{split}"},
        ),
    log:
        log_for("plot_examples", "{split}"),
    benchmark:
        benchmark_for("plot_examples", "{split}")
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("plot_examples", mem_mb=2000, runtime=10),
    script:
        "../../scripts/plot_examples.py"


rule listen:
    input:
        unpack(listen_inputs),
    output:
        page=report(f"{R}/report/listen.html", caption="../report/listen.rst", category="Listen"),
    log:
        log_for("listen"),
    benchmark:
        benchmark_for("listen")
    localrule: True
    conda:
        "../../envs/diffaug.yaml"
    threads: 1
    resources:
        **resources_for("listen", mem_mb=2000, runtime=10),
    params:
        features=FEATURES,
        seed=config["generate"]["seed"],
        mel=MEL if set(ARM_GENERATORS) & set(IMAGE_GENERATORS) else None,
    script:
        "../../scripts/listen.py"
