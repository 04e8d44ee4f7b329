#!/usr/bin/env python3
"""Ray's side of samples/train_fashion_mnist.cc: the same MLP (784-256-128-10, ReLU, softmax
cross-entropy), data, He-uniform initialisation, batch, Adam settings and steps, in numpy,
with Ray's parameter-server example's two modes:

- synchronous: each step, every worker actor computes the gradient of its share of one batch
  from the current weights; the server actor averages them into one Adam update;
- asynchronous: each worker task goes through its share of the epoch's batches at its own
  pace, pulling the weights from the server and pushing each gradient, applied at once.

Prints one line per epoch (test accuracy, seconds) and one JSON line per mode:
{"workload": "train_sync" | "train_async", "seconds": training seconds, "accuracy": final}.
benchmarks/peers/run.py runs it in its venv; numpy's BLAS runs one thread per process.
"""
import argparse
import gzip
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the workers are the parallelism
import numpy as np  # noqa: E402
import ray  # noqa: E402

SIZES = [784, 256, 128, 10]


def read_idx(path, dims):
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = 4 + 4 * (len(dims) + 1)
    if data[:4] != bytes([0, 0, 8, len(dims) + 1]):
        raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
    count = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(count, *dims)


def load(folder, part, limit):
    images = read_idx(f"{folder}/{part}-images-idx3-ubyte.gz", [28, 28])[:limit]
    labels = read_idx(f"{folder}/{part}-labels-idx1-ubyte.gz", [])[:limit]
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, labels.astype(np.int64)


def initial_weights(seed):
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = np.sqrt(6.0 / fan_in)
        weights += [rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32),
                    np.zeros(fan_out, np.float32)]
    return weights


def forward(weights, x):
    activations = [x]
    for layer in range(3):
        z = activations[-1] @ weights[2 * layer] + weights[2 * layer + 1]
        if layer < 2:
            activations.append(np.maximum(z, 0))
        else:
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            activations.append(e / e.sum(axis=1, keepdims=True))
    return activations


def gradient(weights, x, y):
    activations = forward(weights, x)
    probs = activations[-1]
    rows = len(x)
    loss = -np.log(np.maximum(probs[np.arange(rows), y], 1e-30)).mean()
    delta = probs.copy()
    delta[np.arange(rows), y] -= 1
    delta /= rows
    grads = [None] * 6
    for layer in reversed(range(3)):
        grads[2 * layer] = activations[layer].T @ delta
        grads[2 * layer + 1] = delta.sum(axis=0)
        if layer:
            delta = (delta @ weights[2 * layer].T) * (activations[layer] > 0)
    return grads, float(loss)


def accuracy(weights, x, y):
    return float((forward(weights, x)[-1].argmax(axis=1) == y).mean())


@ray.remote
class ParameterServer:
    """Adam on every array; `apply` averages the gradients it is given into one update."""

    def __init__(self, weights, lr):
        self.weights, self.lr, self.t = [w.copy() for w in weights], lr, 0  # its own
        self.m = [np.zeros_like(w) for w in weights]
        self.v = [np.zeros_like(w) for w in weights]

    def apply(self, *gradients):
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        for i, w in enumerate(self.weights):
            g = sum(grads[i] for grads in gradients) / len(gradients)
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            m_hat = self.m[i] / (1 - b1 ** self.t)
            v_hat = self.v[i] / (1 - b2 ** self.t)
            w -= (self.lr * m_hat / (np.sqrt(v_hat) + eps)).astype(np.float32)
        return self.weights

    def get(self):
        return self.weights

    def steps(self):
        return self.t


@ray.remote
class Worker:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def compute(self, weights, rows):
        grads, loss = gradient(weights, self.x[rows], self.y[rows])
        return grads


@ray.remote
def async_worker(server, x, y, order, first_pushes):
    for rows in first_pushes:
        weights = ray.get(server.get.remote())
        grads, _ = gradient(weights, x[order[rows]], y[order[rows]])
        ray.get(server.apply.remote(grads))


def train(mode, args, train_x, train_y, test_x, test_y):
    share = args.batch // args.workers
    pushes = len(train_x) // share
    server = ParameterServer.remote(initial_weights(7), args.lr)
    x_ref, y_ref = ray.put(train_x), ray.put(train_y)
    workers = [Worker.remote(x_ref, y_ref) for _ in range(args.workers)]
    ray.get([w.compute.remote(ray.get(server.get.remote()), np.arange(1)) for w in workers])
    rng = np.random.default_rng(7)
    trained = 0.0
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(train_x))
        start = time.perf_counter()
        if mode == "sync":
            weights = server.get.remote()
            for s in range(pushes // args.workers):
                grads = [w.compute.remote(weights,
                                          order[(s * args.workers + i) * share:
                                                (s * args.workers + i + 1) * share])
                         for i, w in enumerate(workers)]
                weights = server.apply.remote(*grads)
            ray.get(weights)
        else:
            ray.get([async_worker.remote(server, x_ref, y_ref, order,
                                         [slice(k * share, (k + 1) * share)
                                          for k in range(w, pushes, args.workers)])
                     for w in range(args.workers)])
        seconds = time.perf_counter() - start
        trained += seconds
        acc = accuracy(ray.get(server.get.remote()), test_x, test_y)
        print(f"  Ray {mode:5s} epoch {epoch}: test accuracy {100 * acc:.2f}%, {seconds:.2f} s",
              flush=True)
    print(json.dumps({"workload": f"train_{mode}", "seconds": trained, "accuracy": acc,
                      "updates": ray.get(server.steps.remote())}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6,000 rows, one epoch")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--mode", choices=["both", "sync", "async"], default="both")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    rows = 6000 if args.quick else 60000
    if args.quick:
        args.epochs = 1
    train_x, train_y = load(args.data, "train", rows)
    test_x, test_y = load(args.data, "t10k", 2000 if args.quick else 10000)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    for mode in (["sync", "async"] if args.mode == "both" else [args.mode]):
        train(mode, args, train_x, train_y, test_x, test_y)
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
