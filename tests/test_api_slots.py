"""pjrt_plugin/api_slots.inc is what pjrt_plugin/gen_api_slots.py writes: every slot marked IMPL
has its entry point defined in the C++ sources, and every other slot is a STUB.

Needs no file outside the repository: the slot names and order come from the committed .inc (the
generator reads them from the shared slot list), the IMPL marks from the generator's scan of
pjrt_plugin/*.cc.
"""

import importlib.util
import pathlib
import re

import pytest

PLUGIN = pathlib.Path(__file__).resolve().parent.parent / "pjrt_plugin"
INC = PLUGIN / "api_slots.inc"


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_api_slots", PLUGIN / "gen_api_slots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = load_generator()


def committed_slots():
    """[(index, name, kind)] of the committed api_slots.inc."""
    return [(int(i), n, k) for i, n, k in
            re.findall(r"^PYRT_SLOT\((\d+), (\w+), (\w+)\)$", INC.read_text(), re.M)]


def test_impl_marks_match_the_entry_points_the_sources_define():
    slots = committed_slots()
    names = {name for _, name, _ in slots}
    marked = {name for _, name, kind in slots if kind == "IMPL"}
    defined = gen.defined_entry_points(str(PLUGIN))
    assert not marked - defined, f"marked IMPL but not defined: {sorted(marked - defined)}"
    assert not (defined & names) - marked, (
        f"defined but marked STUB: {sorted((defined & names) - marked)}; "
        "regenerate api_slots.inc with pjrt_plugin/gen_api_slots.py")
    assert {kind for _, _, kind in slots} <= {"IMPL", "STUB"}


def test_slots_are_in_abi_order_and_fill_the_table():
    slots = committed_slots()
    assert [index for index, _, _ in slots] == list(range(len(slots)))
    abi = (PLUGIN / "pjrt_abi.h").read_text()
    count = int(re.search(r"#define PYRT_PJRT_API_NUM_SLOTS (\d+)", abi).group(1))
    assert len(slots) == count


def test_the_generator_writes_the_committed_file():
    text = INC.read_text()
    header = re.search(r"^// The \d+ PJRT_Api function slots at PJRT C API (\S+), in ABI order "
                       r"\(slot i sits at\n// byte offset (\d+) ", text)
    assert header, "api_slots.inc lost the header the generator writes"
    slots = [(index, name) for index, name, _ in committed_slots()]
    rendered = gen.render(header.group(1), int(header.group(2)), slots,
                          gen.defined_entry_points(str(PLUGIN)))
    assert rendered == text, "api_slots.inc differs from what pjrt_plugin/gen_api_slots.py writes"


def test_the_scan_finds_entry_points_of_every_shape(tmp_path):
    (tmp_path / "a_api.cc").write_text(
        "void Error_Destroy(PJRT_Error_Destroy_Args* args) {\n}\n"
        "PJRT_Error* Plugin_Initialize(PJRT_Plugin_Initialize_Args*) { return nullptr; }\n"
        "PJRT_Error* Executable_SizeOfGeneratedCodeInBytes(\n"
        "    PJRT_Executable_SizeOfGeneratedCodeInBytes_Args* args) {\n}\n"
        "PJRT_Error* Event_Await(PJRT_Event_Await_Args* args);\n"  # a declaration
        "PJRT_Error* Helper(PJRT_Event_Await_Args* args) {\n}\n"  # not named after its args
        "Status Buffer_Delete(PJRT_Buffer_Delete_Args* args) {\n}\n")  # not an entry point
    (tmp_path / "b.h").write_text("PJRT_Error* Event_IsReady(PJRT_Event_IsReady_Args* args) {}\n")
    assert gen.defined_entry_points(str(tmp_path)) == {
        "Error_Destroy", "Plugin_Initialize", "Executable_SizeOfGeneratedCodeInBytes"}


def test_the_slot_list_is_read_in_abi_order(tmp_path):
    good = tmp_path / "slots.txt"
    good.write_text("# slots at PJRT C API 0.112 (jaxlib 0.10.2)\n"
                    "  0 0x028 PJRT_Error_Destroy\n  1 0x030 PJRT_Error_Message\n")
    assert gen.read_slot_list(str(good)) == ("0.112", 40, [(0, "Error_Destroy"),
                                                           (1, "Error_Message")])
    bad = tmp_path / "bad.txt"
    bad.write_text("# PJRT C API 0.112\n  0 0x028 PJRT_Error_Destroy\n  1 0x038 PJRT_Error_Message\n")
    with pytest.raises(ValueError, match="out of ABI order"):
        gen.read_slot_list(str(bad))
