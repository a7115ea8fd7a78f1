"""Environment probes on this desktop and on a fake Jetson (injected filesystem root + runner)."""

import json
import os

from edge_runtime import environment as envmod

NANO_RELEASE = (
    "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
    "DATE: Sat Feb 19 17:05:08 UTC 2022\n"
)
NVPMODEL_Q = "NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n"
CLOCKS_SHOW_PINNED = (
    "SOC family:tegra210  Machine:NVIDIA Jetson Nano Developer Kit\n"
    "Online CPUs: 0-3\n"
    "cpu0: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0\n"
    "cpu1: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0\n"
    "GPU MinFreq=921600000 MaxFreq=921600000 CurrentFreq=921600000\n"
    "EMC MinFreq=204000000 MaxFreq=1600000000 CurrentFreq=1600000000 FreqOverride=1\n"
)
TEGRASTATS = (
    "RAM 2299/3964MB (lfb 25x4MB) SWAP 0/1982MB (cached 0MB) CPU [12%@1479,3%@1479,off,off] "
    "GR3D_FREQ 0%@921 PLL@31C CPU@34.5C PMIC@50C GPU@31C AO@40C thermal@32.75C POM_5V_IN 2816/2816 "
    "POM_5V_GPU 0/0 POM_5V_CPU 566/566\n"
    "RAM 2299/3964MB (lfb 25x4MB) SWAP 0/1982MB (cached 0MB) CPU [10%@1479,3%@1479,off,off] "
    "GR3D_FREQ 0%@921 PLL@31C CPU@34.5C PMIC@50C GPU@31C AO@40C thermal@32.75C POM_5V_IN 2900/2858 "
    "POM_5V_GPU 40/20 POM_5V_CPU 600/583\n"
)


def write(root, path, text):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)


def fake_nano(root, gpu_min="76800000", cpu_min="102000"):
    write(root, "/proc/device-tree/model", "NVIDIA Jetson Nano Developer Kit\x00")
    write(root, "/etc/nv_tegra_release", NANO_RELEASE)
    write(root, "/proc/cpuinfo", "".join(
        "processor\t: %d\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nCPU part\t: 0xd07\n\n" % i for i in range(4)))
    write(root, "/etc/os-release", 'NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 18.04.6 LTS"\n')
    for i in range(4):
        write(root, "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_min_freq" % i, cpu_min + "\n")
        write(root, "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_max_freq" % i, "1479000\n")
    gpu = "/sys/class/devfreq/57000000.gpu/"
    write(root, gpu + "min_freq", gpu_min + "\n")
    write(root, gpu + "max_freq", "921600000\n")
    write(root, gpu + "cur_freq", "921600000\n")
    write(root, "/proc/loadavg", "0.52 0.61 0.70 1/234 5678\n")
    write(root, "/sys/class/thermal/thermal_zone0/type", "CPU-therm\n")
    write(root, "/sys/class/thermal/thermal_zone0/temp", "34500\n")
    write(root, "/sys/class/thermal/thermal_zone1/type", "GPU-therm\n")
    write(root, "/sys/class/thermal/thermal_zone1/temp", "31000\n")


def runner_with(outputs, calls=None):
    def runner(argv, timeout=None, keep_partial=False):
        if calls is not None:
            calls.append((list(argv), timeout, keep_partial))
        return outputs.get(argv[0])

    return runner


def test_fake_nano_facts_from_commands(tmp_path):
    fake_nano(tmp_path)
    calls = []
    runner = runner_with({"nvpmodel": NVPMODEL_Q, "jetson_clocks": CLOCKS_SHOW_PINNED, "tegrastats": TEGRASTATS},
                         calls)
    env = envmod.collect_environment(root=str(tmp_path), runner=runner, libraries=False)
    jetson = env["jetson"]
    assert jetson["model"] == "NVIDIA Jetson Nano Developer Kit"
    assert jetson["l4t"] == "32.7.1"
    assert jetson["power_mode"] == {"name": "MAXN", "id": 0}
    assert jetson["clocks"]["pinned"] is True and jetson["clocks"]["source"] == "jetson_clocks --show"
    assert jetson["power"]["rails_mw"] == {"POM_5V_IN": 2900, "POM_5V_GPU": 40, "POM_5V_CPU": 600}
    assert env["temperature_c"] == {"CPU-therm": 34.5, "GPU-therm": 31.0}
    assert env["cpu"]["cores"] == 4 and env["cpu"]["model"] == "ARMv8 Processor rev 1 (v8l)"
    assert env["os"]["name"] == "Ubuntu 18.04.6 LTS"
    assert env["load_average"] == [0.52, 0.61, 0.7]
    # every command had a timeout, and none of them changes the machine
    assert all(timeout and timeout > 0 for _, timeout, _ in calls)
    commands = [" ".join(argv) for argv, _, _ in calls]
    assert "nvpmodel -q" in commands and "jetson_clocks --show" in commands
    assert not any(c.startswith("nvpmodel -m") or c == "jetson_clocks" for c in commands)
    json.dumps(env)  # JSON-able
    assert "L4T 32.7.1, power mode MAXN (0), clocks pinned: yes" in envmod.summary_lines(env)[-1]


def test_clocks_fall_back_to_sysfs_when_jetson_clocks_needs_root(tmp_path):
    fake_nano(tmp_path)  # GPU min != max and CPU min != max: not pinned
    env = envmod.collect_environment(root=str(tmp_path), runner=runner_with({}), libraries=False)
    clocks = env["jetson"]["clocks"]
    assert clocks["source"] == "sysfs" and clocks["pinned"] is False
    assert "GPU" in clocks["unpinned"] and "cpu0" in clocks["unpinned"]
    assert clocks["gpu"]["max_hz"] == 921600000
    assert env["jetson"]["power_mode"] is None and env["jetson"]["power"] is None


def test_sysfs_pinned(tmp_path):
    fake_nano(tmp_path, gpu_min="921600000", cpu_min="1479000")
    clocks = envmod.clocks_from_sysfs(str(tmp_path))
    assert clocks["pinned"] is True and clocks["unpinned"] == []


def test_not_a_jetson(tmp_path):
    write(tmp_path, "/proc/cpuinfo", "processor\t: 0\nmodel name\t: Some CPU\n")
    env = envmod.collect_environment(root=str(tmp_path), runner=runner_with({}), libraries=False)
    assert env["jetson"] is None and env["temperature_c"] is None
    assert env["cpu"]["model"] == "Some CPU"


def test_parsers_reject_garbage():
    assert envmod.parse_l4t_release("nonsense") is None
    assert envmod.parse_nvpmodel("") is None
    assert envmod.parse_jetson_clocks_show("permission denied") is None
    assert envmod.parse_tegrastats(None) is None
    orin = envmod.parse_tegrastats("RAM 1/2MB VDD_IN 4567mW/4500mW VDD_CPU_GPU_CV 800mW/790mW")
    assert orin["rails_mw"] == {"VDD_IN": 4567, "VDD_CPU_GPU_CV": 800}


def test_run_command_never_raises():
    assert envmod.run_command(["definitely-not-a-command-xyz"]) is None
    assert envmod.run_command(["false"]) is None
    assert envmod.run_command(["echo", "hi"]).strip() == "hi"
    assert envmod.run_command(["sleep", "5"], timeout=0.2) is None
    partial = envmod.run_command(["sh", "-c", "echo first; sleep 5"], timeout=0.5, keep_partial=True)
    assert partial.strip() == "first"


def test_this_desktop_block_is_complete():
    env = envmod.collect_environment()
    for key in ("host", "cpu", "os", "python", "libraries", "load_average", "jetson", "temperature_c"):
        assert key in env
    libs = env["libraries"]
    assert libs["numpy"] and libs["opencv"]["version"]
    assert libs["opencv"]["gstreamer"] in (True, False)
    assert env["cpu"]["cores"] >= 1
    json.dumps(env)


def test_thermal_snapshot_after_a_run(tmp_path):
    fake_nano(tmp_path)
    snap = envmod.thermal_snapshot(str(tmp_path), runner_with({"tegrastats": TEGRASTATS}))
    assert snap == {"load_average": [0.52, 0.61, 0.7], "temperature_c": {"CPU-therm": 34.5, "GPU-therm": 31.0},
                    "power": {"rails_mw": {"POM_5V_IN": 2900, "POM_5V_GPU": 40, "POM_5V_CPU": 600},
                              "line": TEGRASTATS.splitlines()[-1]}}
    assert envmod.thermal_snapshot(str(tmp_path / "nothing")) == {"load_average": None, "temperature_c": None,
                                                                  "power": None}


def test_int8_dot_product_flags_from_cpuinfo():
    """x86 "flags" (AVX-512 VNNI, AVX-VNNI) and Arm "Features" (asimddp: the Orin's A78AE has it, the
    Nano's A57 has not); the first match in INT8_DOT_FLAGS order."""
    x86 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni avx_vnni\n"
    assert envmod.int8_dot_flag(x86) == "avx512_vnni"
    assert envmod.int8_dot_flag("flags\t\t: fpu sse avx2 avx_vnni\n") == "avx_vnni"
    assert envmod.int8_dot_flag("flags\t\t: fpu sse avx2 avx512f\n") is None
    orin = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics asimddp lrcpc\nCPU part\t: 0xd42\n"
    nano = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\nCPU part\t: 0xd07\n"
    assert envmod.int8_dot_flag(orin) == "asimddp" and envmod.int8_dot_flag(nano) is None
    assert envmod.int8_dot_flag("") is None and envmod.int8_dot_flag(None) is None
