# Two entry points on a fresh machine (each installs what it needs first):
#   make an4    the main job: AN4 end to end (prepare, monophone + triphone training, decode, WER reports)
#   make test   the test suite
.PHONY: an4 test install

install:
	bash tools/install.sh

an4: install
	cd recipes/an4 && ./run.sh

# test files run in parallel, one worker per core (pytest-xdist); a file's tests share a worker and its fixtures
test: install
	.venv/bin/python -m pytest -q -n auto --dist loadfile tests
