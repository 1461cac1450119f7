#!/bin/sh
# HTCondor's GPU inventory for the practice pool (MACHINE_RESOURCE_INVENTORY_GPUs): the real GPUs
# where the container was given some, else one pretend GPU whose properties satisfy the kit's
# `gpus_minimum_runtime`, so a CUDA job file runs, on the CPU.
if [ -e /dev/nvidia0 ]; then
    exec /usr/libexec/condor/condor_gpu_discovery -properties
fi
echo 'DetectedGPUs="GPU-practice0"'
echo 'Common=[ Capability=8.0; DeviceName="none: the practice pool runs GPU jobs on the CPU"; DriverVersion=13.0; MaxSupportedVersion=13000; GlobalMemoryMb=1024; ECCEnabled=false; ]'
echo 'GPU_practice0=[ id="GPU-practice0"; ]'
