"""Lookup contents of schema ``experiment``, exactly as the original lists them (spec §3)."""

TASKS = [
    {"name": "audio delay", "description": "auditory delayed response task (2AFC)"},
    {"name": "audio mem", "description": "auditory working memory task"},
    {"name": "s1 stim", "description": "S1 photostimulation task (2AFC)"},
    {"name": "foraging", "description": "foraging task based on Bari-Cohen 2019"},
    {
        "name": "foraging 3lp",
        "description": "foraging task based on Bari-Cohen 2019 with variable delay period, "
        "three lickports",
    },
    {"name": "multi-target-licking", "description": "multi-target-licking task"},
]

# (task, protocol number, description)
TASK_PROTOCOLS = [
    ("audio delay", 1, "high tone vs. low tone"),
    ("s1 stim", 2, "mini-distractors"),
    (
        "s1 stim",
        3,
        "full distractors, with 2 distractors (at different times) on some of the left trials",
    ),
    ("s1 stim", 4, "full distractors"),
    ("s1 stim", 5, "mini-distractors, with different levels of the mini-stim during sample period"),
    ("s1 stim", 6, "full distractors; same as protocol 4 but with a no-chirp trial-type"),
    ("s1 stim", 7, "mini-distractors and full distractors (only at late delay)"),
    (
        "s1 stim",
        8,
        "mini-distractors and full distractors (only at late delay), with different levels of "
        "the mini-stim and the full-stim during sample period",
    ),
    (
        "s1 stim",
        9,
        "mini-distractors and full distractors (only at late delay), with different levels of "
        "the mini-stim and the full-stim during sample period",
    ),
    (
        "foraging",
        100,
        "moving lickports, delay period, early-lick punishment, sound GO cue then free choice",
    ),
    (
        "foraging 3lp",
        101,
        "moving lickports, delay period, early-lick punishment, sound GO cue then free choice "
        "from three lickports",
    ),
    ("multi-target-licking", 1, "2D"),
    ("multi-target-licking", 2, "Spontaneous"),
]

TRAINING_TYPES = [
    {"name": "regular", "description": ""},
    {
        "name": "regular + distractor",
        "description": "mice were first trained on the regular S1 photostimulation task without "
        "distractors, then the training continued in the presence of distractors",
    },
    {"name": "regular or regular + distractor", "description": "includes both training options"},
]

PROJECTS = [
    {"name": "MAP", "description": "The Mesoscale Activity Map project", "publication": ""},
    {
        "name": "Brain-wide neural activity underlying memory-guided movement",
        "description": "Brain-wide neural activity underlying memory-guided movement (2023)",
        "publication": "10.1101/2023.03.01.530520",
    },
]

TRIAL_NOTE_TYPES = [
    {"name": n}
    for n in ("autolearn", "protocol #", "bad", "bitcode", "autowater", "random_seed_start")
]

TRIAL_INSTRUCTIONS = [{"name": n} for n in ("left", "right", "middle", "none")]

OUTCOMES = [{"name": n} for n in ("hit", "miss", "ignore", "N/A")]

EARLY_LICKS = [
    {"name": "early", "description": "early lick during sample and/or delay"},
    {
        "name": "early, presample only",
        "description": "early lick in the presample period, after the onset of the scheduled "
        "wave but before the sample period",
    },
    {"name": "no early", "description": ""},
]

WATER_PORTS = [{"name": n} for n in ("left", "right", "middle")] + [
    {"name": f"mtl-{i}"} for i in range(1, 10)
]

TRIAL_EVENT_TYPES = [
    {"name": n}
    for n in (
        "delay",
        "go",
        "sample",
        "presample",
        "trialend",
        "videostart",
        "videoend",
        "bitcodestart",
        "choice",
        "reward",
        "doubledip",
        "bpodstart",
        "zaberstep",
        "zaberready",
    )
]

ACTION_EVENT_TYPES = [{"name": n} for n in ("left lick", "right lick", "middle lick")]

# (period, start event, start shift s, end event, end shift s) — §3.6
PERIODS = [
    ("sample", "sample", 0.0, "delay", 0.0),
    ("delay", "delay", 0.0, "go", 0.0),
    ("response", "go", 0.0, "go", 1.2),
]

ALL = {
    "experiment.Task": TASKS,
    "experiment.TrainingType": TRAINING_TYPES,
    "experiment.Project": PROJECTS,
    "experiment.TrialNoteType": TRIAL_NOTE_TYPES,
    "experiment.TrialInstruction": TRIAL_INSTRUCTIONS,
    "experiment.Outcome": OUTCOMES,
    "experiment.EarlyLick": EARLY_LICKS,
    "experiment.WaterPort": WATER_PORTS,
    "experiment.TrialEventType": TRIAL_EVENT_TYPES,
    "experiment.ActionEventType": ACTION_EVENT_TYPES,
}


def load(apps) -> None:  # noqa: ANN001 - the migration's historical app registry
    """Load every experiment lookup, including the two that reference others by name."""
    from mapsite.core.lookups import load_lookup

    for label, rows in ALL.items():
        load_lookup(apps, label, rows)
    Task = apps.get_model("experiment.Task")
    TaskProtocol = apps.get_model("experiment.TaskProtocol")
    for task, number, description in TASK_PROTOCOLS:
        TaskProtocol.objects.update_or_create(
            task=Task.objects.get(name=task), protocol=number, defaults={"description": description}
        )
    EventType = apps.get_model("experiment.TrialEventType")
    Period = apps.get_model("experiment.Period")
    for name, start, start_shift, end, end_shift in PERIODS:
        Period.objects.update_or_create(
            name=name,
            defaults={
                "start_event_type": EventType.objects.get(name=start),
                "start_time_shift": start_shift,
                "end_event_type": EventType.objects.get(name=end),
                "end_time_shift": end_shift,
            },
        )
