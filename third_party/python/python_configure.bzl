"""Repository rule exposing the Python C headers as @local_python//:python_headers.

Runs $PYTHON_BIN_PATH (else python3 on PATH) so the headers match the
interpreter the plugin will be loaded into. Headers only: the plugin must not
link libpython (Py* symbols resolve inside the host Python process).
"""

def _python_binary(rctx):
    path = rctx.os.environ.get("PYTHON_BIN_PATH", "").strip()
    if path:
        return path
    found = rctx.which("python3")
    if not found:
        fail("python3 not found on PATH; set PYTHON_BIN_PATH")
    return str(found)

def _python_configure_impl(rctx):
    python = _python_binary(rctx)
    res = rctx.execute([python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"])
    if res.return_code != 0:
        fail("%s failed to report its include dir:\n%s" % (python, res.stderr))
    include = res.stdout.strip()
    if not rctx.path(include + "/Python.h").exists:
        fail("Python.h not found in %s (is the Python dev package installed?)" % include)
    rctx.symlink(include, "include")
    rctx.file("BUILD", """\
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "python_headers",
    hdrs = glob(["include/**/*.h"]),
    includes = ["include"],
)
""")

python_configure = repository_rule(
    implementation = _python_configure_impl,
    environ = ["PYTHON_BIN_PATH", "PATH"],
    local = True,
)
