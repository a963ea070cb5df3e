"""End-to-end test from an independent client: Python grpcio (Debian's, /usr/bin/python3).

Message classes are generated from proto/xlstm/v1/inference.proto at test time with protoc's
Python output; the RPCs are called through grpcio's generic multicallables, so no grpc_tools
plugin is needed. Checks streamed greedy Generate and Score against xlstm-run.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--xlstm-run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--proto-dir", required=True)
    args = ap.parse_args()

    gen_dir = tempfile.mkdtemp(prefix="xlstm_py_")
    subprocess.run(["protoc", f"--proto_path={args.proto_dir}", f"--python_out={gen_dir}",
                    os.path.join(args.proto_dir, "xlstm/v1/inference.proto")], check=True)
    sys.path.insert(0, gen_dir)
    from xlstm.v1 import inference_pb2 as pb  # noqa: E402

    server = subprocess.Popen([args.server, "--model", args.model, "--host", "127.0.0.1",
                               "--port", "0", "--metrics-port", "-1", "--num-slots", "4"],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = None
        for line in server.stdout:
            m = re.search(r"ready grpc_port=(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "server did not start"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        generate = channel.unary_stream(
            "/xlstm.v1.Inference/Generate",
            request_serializer=pb.GenerateRequest.SerializeToString,
            response_deserializer=pb.GenerateResponse.FromString)
        score = channel.unary_unary(
            "/xlstm.v1.Inference/Score",
            request_serializer=pb.ScoreRequest.SerializeToString,
            response_deserializer=pb.ScoreResponse.FromString)

        # request_id is `bytes` (UTF-8 checked by the server); responses echo it as a string.
        req = pb.GenerateRequest(
            request_id=b"py-1", ids=pb.TokenIds(ids=[5, 17, 9]),
            sampling=pb.SamplingOptions(temperature=0.0),
            stopping=pb.StoppingOptions(max_new_tokens=16, ignore_eos=True), logprobs=True)
        ids, final = [], None
        for msg in generate(req, timeout=30):
            assert msg.request_id == "py-1", msg.request_id
            ids += [t.id for t in msg.tokens]
            if msg.final:
                final = msg
        assert final is not None and final.finish_reason == pb.FINISH_REASON_LENGTH
        assert final.usage.prompt_tokens == 3 and final.usage.generated_tokens == 16
        ref = json.loads(subprocess.run(
            [args.xlstm_run, "generate", "--model", args.model, "--ids", "5,17,9",
             "--max-new-tokens", "16", "--greedy", "--ignore-eos", "--json"],
            check=True, capture_output=True, text=True).stdout)
        assert ids == ref["ids"], (ids, ref["ids"])

        sreq = pb.ScoreRequest(items=[pb.ScoreItem(
            context_ids=pb.TokenIds(ids=[5]), continuation_ids=[pb.TokenIds(ids=[17, 9, 4])])])
        sresp = score(sreq, timeout=30)
        c = sresp.items[0].continuations[0]
        sref = json.loads(subprocess.run(
            [args.xlstm_run, "score", "--model", args.model, "--context-ids", "5",
             "--continuation-ids", "17,9,4", "--json"],
            check=True, capture_output=True, text=True).stdout)
        assert all(abs(a - b) < 1e-4 for a, b in zip(c.logprobs, sref["logprobs"])), c.logprobs
        assert abs(c.sum - sref["sum"]) < 1e-3 and c.is_greedy == sref["is_greedy"]

        try:
            list(generate(pb.GenerateRequest(ids=pb.TokenIds(ids=[5, 999])), timeout=10))
            raise AssertionError("expected INVALID_ARGUMENT")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
            assert "prompt.ids[1] = 999" in e.details(), e.details()
        print("python client e2e: ok")
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0


if __name__ == "__main__":
    main()
