"""Failure logs as real tools print them, for `ck launch diagnose`'s catalogue test.

Sources: argparse, torch's CPU allocator and transformers 5's TrainingArguments were run here and
their output copied; the others follow the tools' formats as their users reported them (tyro's
boxed `Unrecognized options` (brentyi/tyro#457), Hydra's override errors (hydra #1457, #947), click's
NoSuchOption, MLflow's REST client (mlflow #12154), gymnasium's DependencyNotInstalled, Lightning 2's
removed `Trainer.add_argparse_args`, torch's NCCL and OOM messages).
Each case: (log, exit code, the run's command, category, text the exception line holds, advice bits).
"""
from __future__ import annotations

TB = "Traceback (most recent call last):\n"
SITE = "/home/u/proj/.venv/lib/python3.11/site-packages"

CASES = {
    # ------------------------------------------------------------------ out of memory
    "torch_cpu_oom": (
        TB + '  File "/r/train.py", line 40, in <module>\n    buf = torch.empty(n_tokens, d_model)\n'
        "RuntimeError: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 4000000000000000 bytes. Error code 12 (Cannot allocate memory)\n",
        1, "python train.py --batch-size 64 --workers 8", "cpu_oom", "DefaultCPUAllocator",
        ["Host RAM", "3.6 PiB", "--batch-size 32", "--workers 4", "not a GPU"]),
    "cuda_oom": (
        "epoch 0 step 10 loss 2.31\n" + TB + '  File "/r/train.py", line 88, in train\n    loss.backward()\n'
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        "79.15 GiB of which 1.06 GiB is free. Including non-PyTorch memory, this process has 78.08 GiB memory in use.\n",
        1, "python train.py --per_device_train_batch_size 16 --gradient_accumulation_steps 2", "oom",
        "torch.OutOfMemoryError", ["--per_device_train_batch_size 8", "--gradient_accumulation_steps 4", "2.00 GiB"]),
    # ------------------------------------------------------------------ bad arguments
    "argparse_unrecognized": (
        "usage: train.py [-h] [--learning-rate LEARNING_RATE] [--optimizer {sgd,adam}]\n"
        "train.py: error: unrecognized arguments: --learning_rate 3\n",
        2, "python train.py --learning_rate 3", "bad_args", "unrecognized arguments: --learning_rate",
        ["argparse refused", "--learning_rate", "python train.py --help"]),
    "argparse_invalid_choice": (
        "usage: train.py [-h] [--learning-rate LEARNING_RATE] [--optimizer {sgd,adam}]\n"
        "train.py: error: argument --optimizer: invalid choice: 'adamw' (choose from 'sgd', 'adam')\n",
        2, "python train.py --optimizer adamw", "bad_args", "invalid choice",
        ["--optimizer", "valid: sgd, adam"]),
    "tyro_perhaps_you_meant": (
        "╭─ Unrecognized options ─────────────────────────────────────────╮\n"
        "│ Unrecognized options: --learning_rate                          │\n"
        "│ ────────────────────────────────────────────────────────────── │\n"
        "│ Perhaps you meant:                                             │\n"
        "│     --learning-rate FLOAT                                      │\n"
        "│         the learning rate of the optimizer (default: 0.00025)  │\n"
        "│ ────────────────────────────────────────────────────────────── │\n"
        "│ For full helptext, run ppo.py --help                           │\n"
        "╰────────────────────────────────────────────────────────────────╯\n",
        2, "python ppo.py --learning_rate 3e-4", "bad_args", "Unrecognized options: --learning_rate",
        ["tyro refused", "did you mean --learning-rate?", "the tool defines it"]),
    "click_no_such_option": (
        "Usage: train.py [OPTIONS]\nTry 'train.py --help' for help.\n\n"
        "Error: No such option: --epoch Did you mean --epochs?\n",
        2, "python train.py --epoch 3", "bad_args", "No such option: --epoch",
        ["click refused", "did you mean --epochs?"]),
    "hydra_override": (
        "Could not override 'trainer.max_epoch'.\nTo append to your config use +trainer.max_epoch=3\n"
        "Key 'max_epoch' is not in struct\n    full_key: trainer.max_epoch\n    object_type=dict\n\n"
        "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.\n",
        1, "python src/train.py trainer.max_epoch=3", "bad_args", "Could not override 'trainer.max_epoch'",
        ["Hydra refused the override 'trainer.max_epoch'", "+trainer.max_epoch=3", "--cfg job"]),
    # ------------------------------------------------------------------ dependencies
    "module_not_found_cv2": (
        TB + '  File "/r/data.py", line 3, in <module>\n    import cv2\nModuleNotFoundError: No module named \'cv2\'\n',
        1, "python train.py", "dependency", "No module named 'cv2'", ["pip install opencv-python"]),
    "pkg_resources_removed": (
        TB + '  File "/r/train.py", line 2, in <module>\n    import pkg_resources\n'
        "ModuleNotFoundError: No module named 'pkg_resources'\n",
        1, "python train.py", "dependency", "pkg_resources", ["'setuptools<81'", "removed in setuptools 81"]),
    "gymnasium_box2d_extra": (
        TB + f'  File "{SITE}/gymnasium/envs/box2d/bipedal_walker.py", line 25, in <module>\n    import Box2D\n'
        "ModuleNotFoundError: No module named 'Box2D'\n\nThe above exception was the direct cause of the following exception:\n\n"
        + TB + '  File "/r/train.py", line 12, in <module>\n    env = gym.make("LunarLander-v3")\n'
        'gymnasium.error.DependencyNotInstalled: Box2D is not installed, you can install it by run `pip install swig` '
        'followed by `pip install "gymnasium[box2d]"`\n',
        1, "python train.py", "dependency", "gymnasium.error.DependencyNotInstalled",
        ["`/v/bin/python -m pip install swig` then `/v/bin/python -m pip install \"gymnasium[box2d]\"`"]),
    "gymnasium_ale_namespace": (
        TB + '  File "/r/train.py", line 8, in <module>\n    env = gym.make("ALE/Pong-v5")\n'
        "gymnasium.error.NamespaceNotFound: Namespace ALE not found. Have you installed the proper package for ALE?\n",
        1, "python train.py", "dependency", "Namespace ALE not found", ["/v/bin/python -m pip install 'gymnasium[atari]'"]),
    "gymnasium_name_not_found": (
        TB + '  File "/r/train.py", line 8, in <module>\n    env = gym.make("HalfCheetah-v5")\n'
        "gymnasium.error.NameNotFound: Environment `HalfCheetah` doesn't exist.\n",
        1, "python train.py", "dependency", "NameNotFound", ["/v/bin/python -m pip install 'gymnasium[mujoco]'"]),
    "transformers_accelerate": (
        TB + '  File "/r/train.py", line 30, in <module>\n    args = TrainingArguments(output_dir="out")\n'
        "ImportError: Using the `Trainer` with `PyTorch` requires `accelerate>=0.26.0`: Please run "
        "`pip install transformers[torch]` or `pip install 'accelerate>=0.26.0'`\n",
        1, "python train.py", "dependency", "requires `accelerate>=0.26.0`",
        ["/v/bin/python -m pip install transformers[torch]"]),
    "tensorboard_missing": (
        TB + '  File "/r/train.py", line 50, in <module>\n    model.learn(10000)\n'
        "ImportError: Trying to log data to tensorboard but tensorboard is not installed.\n",
        1, "python train.py", "dependency", "tensorboard is not installed", ["/v/bin/python -m pip install tensorboard"]),
    # ------------------------------------------------------------------ services
    "mlflow_refused": (
        "requests.exceptions.ConnectionError: HTTPConnectionPool(host='localhost', port=5000): Max retries exceeded "
        "with url: /api/2.0/mlflow/experiments/get-by-name?experiment_name=demo (Caused by NewConnectionError("
        "'<urllib3.connection.HTTPConnection object at 0x7f1>: Failed to establish a new connection: [Errno 111] "
        "Connection refused'))\n\nDuring handling of the above exception, another exception occurred:\n\n" + TB
        + '  File "/r/train.py", line 9, in <module>\n    mlflow.set_experiment("demo")\n'
        "mlflow.exceptions.MlflowException: API request to http://localhost:5000/api/2.0/mlflow/experiments/get-by-name "
        "failed with exception HTTPConnectionPool(host='localhost', port=5000): Max retries exceeded with url: "
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=demo (Caused by NewConnectionError('<urllib3."
        "connection.HTTPConnection object at 0x7f1>: Failed to establish a new connection: [Errno 111] Connection refused'))\n",
        1, "python train.py", "service_unreachable", "MlflowException",
        ["localhost:5000", "MLflow tracking server", "mlflow server", "MLFLOW_TRACKING_URI=file:./mlruns",
         "not a download problem"]),
    "wandb_local_refused": (
        "wandb: Network error (ConnectionError), entering retry loop.\n" + TB
        + '  File "/r/train.py", line 20, in <module>\n    wandb.init(project="p")\n'
        "wandb.errors.CommError: Error communicating with wandb process: HTTPConnectionPool(host='localhost', "
        "port=8080): Max retries exceeded (Caused by NewConnectionError('Failed to establish a new connection: "
        "[Errno 111] Connection refused'))\n",
        1, "python train.py --track", "service_unreachable", "wandb.errors.CommError",
        ["localhost:8080", "WANDB_MODE=offline"]),
    # ------------------------------------------------------------------ config keys and API drift
    "unexpected_kwarg_key": (
        TB + '  File "/r/train.py", line 61, in <module>\n    model = Net(**cfg["model"])\n'
        "TypeError: Net.__init__() got an unexpected keyword argument 'learning_rate'\n",
        1, "python train.py --config cfg.yaml", "config_key", "unexpected keyword argument 'learning_rate'",
        ["Net.__init__ does not accept the config key 'learning_rate'"]),
    "omegaconf_key_valid_listed": (
        TB + '  File "/r/train.py", line 14, in main\n    lr = cfg.optim.lrr\n'
        "omegaconf.errors.ConfigAttributeError: Key 'lrr' is not in struct\n    full_key: optim.lrr\n"
        "Valid keys: lr, momentum, weight_decay\n",
        1, "python train.py", "config_key", "Key 'lrr' is not in struct",
        ["'lrr'", "valid keys: lr, momentum, weight_decay", "did you mean 'lr'?"]),
    "lightning2_add_argparse_args": (
        TB + '  File "/r/train.py", line 77, in <module>\n    parser = Trainer.add_argparse_args(parser)\n'
        "AttributeError: type object 'Trainer' has no attribute 'add_argparse_args'\n",
        1, "python train.py", "api_drift", "add_argparse_args",
        ["Trainer.add_argparse_args", "pytorch-lightning<2.0", "LightningCLI"]),
    "transformers_eval_strategy": (
        TB + '  File "/r/train.py", line 2, in <module>\n'
        "TypeError: TrainingArguments.__init__() got an unexpected keyword argument 'evaluation_strategy'\n",
        1, "python train.py", "api_drift", "evaluation_strategy",
        ["TrainingArguments.evaluation_strategy", "eval_strategy", "transformers<4.46"]),
    "cannot_import_name": (
        TB + '  File "/r/train.py", line 5, in <module>\n'
        "    from huggingface_hub import cached_download\n"
        "ImportError: cannot import name 'cached_download' from 'huggingface_hub' "
        f"({SITE}/huggingface_hub/__init__.py)\n",
        1, "python train.py", "api_drift", "cached_download", ["cached_download", "huggingface-hub", "update the code"]),
    # ------------------------------------------------------------------ distributed
    "rich_traceback_nccl": (
        "╭─────────────────── Traceback (most recent call last) ───────────────────╮\n"
        "│ /home/u/.conda/envs/x/lib/python3.9/site-packages/transformers/training_args.py:1679 │\n"
        "│ in _setup_devices                                                        │\n"
        "│ ❱ 1680 │   │   │   torch.distributed.init_process_group(backend=\"nccl\")  │\n"
        "╰──────────────────────────────────────────────────────────────────────────╯\n"
        "RuntimeError: ProcessGroupNCCL is only supported with GPUs, no GPUs found!\n",
        1, "torchrun --nproc_per_node 2 train.py", "distributed", "no GPUs found", ["without visible GPUs"]),
    "nccl_cpu_build": (
        TB + '  File "/r/train.py", line 7, in <module>\n'
        "RuntimeError: Distributed package doesn't have NCCL built in\n",
        1, "python train.py", "distributed", "NCCL built in", ["built without NCCL", "gloo"]),
    "nccl_cuda_build_no_gpu": (
        TB + '  File "/r/train.py", line 7, in <module>\n'
        "ValueError: ProcessGroupNCCL is only supported with GPUs, no GPUs found!\n",
        1, "torchrun --nproc_per_node 2 train.py", "distributed", "no GPUs found",
        ["CUDA build of torch on a machine", "without visible GPUs", "gloo"]),
}
