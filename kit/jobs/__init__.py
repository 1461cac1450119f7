"""Jobs on a cluster: the job files the kit writes (HTCondor submit file, Slurm batch script) and
the scheduler clients that submit them and follow them.

`kit.jobs.shapes` checks the job options' shapes (imported by `kit.options`, so it imports
nothing of the kit's but errors); `kit.jobs.files` derives what the job templates print;
`kit.jobs.schedulers` talks to HTCondor and Slurm. Front ends reach all of it through `kit.api`.
"""
