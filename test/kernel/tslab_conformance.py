"""Jupyter messaging-protocol conformance of the tslab kernel.

Drives the installed "tslab" kernelspec through jupyter_client, with Debian's
python3-jupyter-kernel-test (jupyter_kernel_test.KernelTests, 0.4.5) plus the
protocol parts that version does not cover: update_display_data, execute_input,
error details, comm_info and comms, interrupt (signal and message), shutdown and
restart. Run from this folder with node_modules/.bin on PATH (the kernelspec
starts `tslab` by name):

    PATH="$PWD/../../node_modules/.bin:$PATH" /usr/bin/python3 -m unittest -v tslab_conformance

test/kernel/conformance.test.ts runs it and lists the tests tslab cannot pass.
"""

import time
import unittest
import uuid
from queue import Empty

import jupyter_kernel_test as jkt
from jupyter_client.manager import start_new_kernel
from jupyter_kernel_test.msgspec_v5 import validate_message

TIMEOUT = jkt.TIMEOUT

# A 1x1 PNG, base64.
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="

# How lib/display/notebook.ts sends outputs: tslab's jupyter.js module found in require.cache,
# its lastWriteDisplayData called with a MIME bundle and a display id.
LIB_SEND = """
const key = Object.keys(require.cache).find((k) => /[\\\\/]tslab[\\\\/]dist[\\\\/]jupyter\\.js$/.test(k))!;
const send = require.cache[key]!.exports.lastWriteDisplayData;
"""


def wait_iopub(kc, parent_id, timeout=TIMEOUT):
    """The iopub messages (status excepted) answering parent_id, up to its idle status."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != parent_id:
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                return out
            continue
        out.append(msg)


def wait_stream(kc, parent_id, text, timeout=TIMEOUT):
    """Waits for a stream message of parent_id containing text (the cell has started running)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if (
            msg["parent_header"].get("msg_id") == parent_id
            and msg["msg_type"] == "stream"
            and text in msg["content"]["text"]
        ):
            return


def shell_reply(kc, msg_id, timeout=TIMEOUT):
    """The shell reply to msg_id (skipping replies to earlier requests)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


class TslabKernelTests(jkt.KernelTests):
    kernel_name = "tslab"
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world");'
    code_stderr = 'console.error("to stderr");'

    completion_samples = [
        {"text": "Math.ab", "matches": {"abs"}},
        {"text": "const conformanceValue = 1;\nconformanceVa", "matches": {"conformanceValue"}},
    ]

    complete_code_samples = [
        "let a = 1;",
        'console.log("x")',
        "function f() {\n  return 1;\n}",
        "const o = { a: [1, 2] };",
        "const n = <number>(1 as unknown);",
    ]
    incomplete_code_samples = [
        "let x = ",
        "let x =",
        "function f() {",
        "foo(1, 2",
        "[1, 2",
        "if (a) {\n  let b = ",
        "const s = `abc",
        "let y = 1 + // comment",
    ]
    invalid_code_samples = [
        "let 1x = 3;",
        "x = );",
        "}",
        '"unterminated',
    ]

    code_generate_error = 'throw new Error("conformance error");'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "[1, 2, 3].map((x) => x * 2)", "result": "[ 2, 4, 6 ]"},
        {"code": "({ a: 1, b: 'two' })", "result": "{ a: 1, b: 'two' }"},
    ]
    code_history_pattern = "6 * 7"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "Math.max"

    code_display_data = [
        {"code": 'import * as tslab from "tslab";\ntslab.display.html("<b>conformance</b>");', "mime": "text/html"},
        {"code": f'import * as tslab from "tslab";\ntslab.display.png(Buffer.from("{PNG_1PX}", "base64"));', "mime": "image/png"},
        {
            "code": LIB_SEND
            + f'send({{ data: {{ "image/png": "{PNG_1PX}", "text/plain": "[image]" }}, metadata: {{}}, transient: {{}} }}, false);',
            "mime": "image/png",
        },
    ]

    code_clear_output = 'import * as tslab from "tslab";\nconsole.log("soon cleared");\ntslab.clearOutput();'

    # tslab has no pager (no IPython-style `?` help); this sample is what a pager kernel pages.
    code_page_something = "Math.max?"

    # --- beyond jupyter_kernel_test 0.4.5 -------------------------------------------------

    # newDisplay() and lib/display's display ids: display_data, then update_display_data.
    def test_update_display_data(self):
        for code in (
            'import * as tslab from "tslab";\nconst d = tslab.newDisplay();\nd.text("first");\nd.text("second");',
            LIB_SEND
            + 'send({ data: { "text/plain": "first" }, metadata: {}, transient: { display_id: "conformance-id" } }, false);\n'
            + 'send({ data: { "text/plain": "second" }, metadata: {}, transient: { display_id: "conformance-id" } }, true);',
        ):
            with self.subTest(code=code):
                self.flush_channels()
                reply, outs = self.execute_helper(code)
                self.assertEqual(reply["content"]["status"], "ok", outs)
                kinds = [m["msg_type"] for m in outs]
                self.assertEqual(kinds, ["display_data", "update_display_data"])
                ids = [m["content"]["transient"].get("display_id") for m in outs]
                self.assertTrue(ids[0])
                self.assertEqual(ids[0], ids[1])
                self.assertEqual(outs[1]["content"]["data"]["text/plain"], "second")

    # A burst of outputs in one tick (zeromq 6 delays writes after 512 synchronous sends, and then
    # refused the next send with EBUSY, which killed the kernel): every update arrives, in order.
    def test_output_burst(self):
        self.flush_channels()
        n = 900
        code = (
            LIB_SEND
            + f"for (let i = 0; i < {n}; i++) "
            + 'send({ data: { "text/plain": String(i) }, metadata: {}, transient: { display_id: "burst" } }, i > 0);'
        )
        reply, outs = self.execute_helper(code)
        self.assertEqual(reply["content"]["status"], "ok", outs[-3:])
        texts = [m["content"]["data"]["text/plain"] for m in outs if m["msg_type"] in ("display_data", "update_display_data")]
        self.assertEqual(texts, [str(i) for i in range(n)])
        self.assertAlive()

    def assertAlive(self):
        reply, outs = self.execute_helper("6 * 7")
        self.assertEqual(reply["content"]["status"], "ok")

    # The help syntax pages exactly what inspect_request (Shift+Tab) answers for the same name.
    def test_pager_equals_inspect(self):
        self.flush_channels()
        reply, outs = self.execute_helper("Math.max?")
        self.assertEqual(reply["content"]["status"], "ok")
        (page,) = reply["content"]["payload"]
        self.assertEqual([m["msg_type"] for m in outs if m["msg_type"] != "execute_input"], [])
        msg_id = self.kc.inspect("Math.max", len("Math.max"))
        inspected = shell_reply(self.kc, msg_id)["content"]
        self.assertTrue(inspected["found"])
        self.assertIn("max", inspected["data"]["text/plain"])
        self.assertEqual(page["data"]["text/plain"], inspected["data"]["text/plain"])

    # execute_input is broadcast with the cell's code and execution count.
    def test_execute_input(self):
        self.flush_channels()
        code = "const conformanceInput = 1;"
        msg_id = self.kc.execute(code)
        reply = shell_reply(self.kc, msg_id)
        outs = wait_iopub(self.kc, msg_id)
        inputs = [m for m in outs if m["msg_type"] == "execute_input"]
        self.assertEqual(len(inputs), 1, outs)
        validate_message(inputs[0], "execute_input", msg_id)
        self.assertEqual(inputs[0]["content"]["code"], code)
        self.assertEqual(inputs[0]["content"]["execution_count"], reply["content"]["execution_count"])

    # Runtime and compile errors: ename/evalue/traceback in the reply and one error message.
    def test_error_details(self):
        for code, ename, evalue in (
            ('throw new TypeError("bad type");', "TypeError", "bad type"),
            ('const conformanceN: number = "str";', "CompileError", "not assignable"),
        ):
            with self.subTest(code=code):
                self.flush_channels()
                reply, outs = self.execute_helper(code)
                content = reply["content"]
                self.assertEqual(content["status"], "error")
                self.assertEqual(content["ename"], ename)
                self.assertIn(evalue, content["evalue"])
                self.assertTrue(content["traceback"])
                self.assertEqual([m["msg_type"] for m in outs], ["error"])
                self.assertEqual(outs[0]["content"]["ename"], ename)

    # comm_info_request is answered with a comm_info_reply.
    def test_comm_info(self):
        self.flush_channels()
        msg_id = self.kc.comm_info()
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        validate_message(reply, "comm_info_reply", msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertIsInstance(reply["content"]["comms"], dict)

    def send_shell(self, msg_type, content):
        msg = self.kc.session.msg(msg_type, content)
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def comm_request(self, msg_type, content):
        """Sends a comm message and returns the kernel's iopub messages in answer (none validated:
        jupyter_kernel_test 0.4.5 has no schema for comm messages, so they never reach flush_channels)."""
        return wait_iopub(self.kc, self.send_shell(msg_type, content))

    # A comm target registered with tslab.registerCommTarget: open, message, close, comm_info.
    def test_comms(self):
        self.flush_channels()
        reply, outs = self.execute_helper(
            'import * as tslab from "tslab";\n'
            'tslab.registerCommTarget("conformance.echo", (comm, msg) => {\n'
            "  comm.onMsg = (m) => comm.send({ echo: m.content.data });\n"
            "  comm.onClose = (m) => { (globalThis as any).conformanceClosed = m.content.data; };\n"
            "  comm.send({ opened: msg.content.data });\n"
            "});"
        )
        self.assertEqual(reply["content"]["status"], "ok", outs)

        comm_id = uuid.uuid4().hex
        outs = self.comm_request("comm_open", {"comm_id": comm_id, "target_name": "conformance.echo", "data": {"hello": 1}})
        self.assertEqual([(m["msg_type"], m["content"]) for m in outs], [("comm_msg", {"comm_id": comm_id, "data": {"opened": {"hello": 1}}})])

        msg_id = self.kc.comm_info(target_name="conformance.echo")
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        validate_message(reply, "comm_info_reply", msg_id)
        self.assertEqual(reply["content"]["comms"], {comm_id: {"target_name": "conformance.echo"}})
        wait_iopub(self.kc, msg_id)

        outs = self.comm_request("comm_msg", {"comm_id": comm_id, "data": {"x": [1, 2]}})
        self.assertEqual([(m["msg_type"], m["content"]) for m in outs], [("comm_msg", {"comm_id": comm_id, "data": {"echo": {"x": [1, 2]}}})])

        outs = self.comm_request("comm_close", {"comm_id": comm_id, "data": {"bye": True}})
        self.assertEqual(outs, [])
        msg_id = self.kc.comm_info()
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        self.assertNotIn(comm_id, reply["content"]["comms"])
        wait_iopub(self.kc, msg_id)
        reply, outs = self.execute_helper("(globalThis as any).conformanceClosed")
        self.assertEqual([m["content"]["data"]["text/plain"] for m in outs if m["msg_type"] == "execute_result"], ["{ bye: true }"])

        # A comm to an unknown target is closed by the kernel, as ipykernel does; messages to
        # unknown comms are ignored. Neither prints anything.
        other = uuid.uuid4().hex
        outs = self.comm_request("comm_open", {"comm_id": other, "target_name": "conformance.none", "data": {}})
        self.assertEqual([(m["msg_type"], m["content"]["comm_id"]) for m in outs], [("comm_close", other)])
        self.assertEqual(self.comm_request("comm_msg", {"comm_id": other, "data": {}}), [])
        self.assertEqual(self.comm_request("comm_close", {"comm_id": other, "data": {}}), [])


class TslabLifecycleTests(unittest.TestCase):
    """Interrupt, restart and shutdown, on a kernel of its own (run in this order)."""

    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name="tslab")

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        if cls.km.is_alive():
            cls.km.shutdown_kernel(now=True)

    def run_and_interrupt(self, code, interrupt):
        msg_id = self.kc.execute('console.log("started");\n' + code)
        wait_stream(self.kc, msg_id, "started")
        time.sleep(0.3)
        interrupt()
        reply = shell_reply(self.kc, msg_id)
        validate_message(reply, "execute_reply", msg_id)
        wait_iopub(self.kc, msg_id)
        return reply

    def assert_alive(self):
        msg_id = self.kc.execute("6 * 7")
        reply = shell_reply(self.kc, msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        outs = wait_iopub(self.kc, msg_id)
        self.assertIn("42", [m["content"]["data"]["text/plain"] for m in outs if m["msg_type"] == "execute_result"])

    # SIGINT (the kernelspec's interrupt mode) stops an await and a busy loop.
    def test_1_interrupt_signal(self):
        for code in ("await new Promise((resolve) => setTimeout(resolve, 60000));", "while (true) {}"):
            with self.subTest(code=code):
                reply = self.run_and_interrupt(code, self.km.interrupt_kernel)
                self.assertEqual(reply["content"]["status"], "error")
                self.assertIn("nterrupted", reply["content"]["evalue"])
                time.sleep(0.3)  # tslab drops requests queued in the 200 ms after an error
                self.assert_alive()

    # interrupt_request on the control channel gets an interrupt_reply and stops an await.
    def test_2_interrupt_message(self):
        def interrupt():
            msg = self.kc.session.msg("interrupt_request", {})
            self.kc.control_channel.send(msg)
            reply = self.kc.get_control_msg(timeout=TIMEOUT)
            validate_message(reply, "interrupt_reply", msg["header"]["msg_id"])
            self.assertEqual(reply["content"]["status"], "ok")

        reply = self.run_and_interrupt("await new Promise((resolve) => setTimeout(resolve, 60000));", interrupt)
        self.assertEqual(reply["content"]["status"], "error")
        time.sleep(0.3)
        self.assert_alive()

    # restart_kernel (shutdown_request restart=true, as front-ends send it) gives a fresh kernel.
    def test_3_restart(self):
        msg_id = self.kc.execute("(globalThis as any).conformanceMarker = 1;")
        self.assertEqual(shell_reply(self.kc, msg_id)["content"]["status"], "ok")
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=60)
        msg_id = self.kc.execute("typeof (globalThis as any).conformanceMarker")
        self.assertEqual(shell_reply(self.kc, msg_id)["content"]["status"], "ok")
        outs = wait_iopub(self.kc, msg_id)
        self.assertEqual([m["content"]["data"]["text/plain"] for m in outs if m["msg_type"] == "execute_result"], ["undefined"])

    # shutdown_request gets a shutdown_reply (status ok, restart echoed) and the process exits.
    def test_4_shutdown(self):
        msg_id = self.kc.shutdown(restart=False)
        reply = self.kc.get_control_msg(timeout=TIMEOUT)
        validate_message(reply, "shutdown_reply", msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(reply["content"]["restart"], False)
        deadline = time.monotonic() + 10
        while self.km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(self.km.is_alive(), "the kernel process did not exit after shutdown_reply")


if __name__ == "__main__":
    unittest.main()
