# Train, evaluate and watch agents through a forwarded X display; TensorBoard on port 6006.
#   docker build -t async-rl .
#   docker run --rm -it --shm-size=1g async-rl python main.py pong -n 8
# README.md, "Docker", has the X forwarding and TensorBoard command lines.
FROM python:3.11-slim-bookworm

# The X client libraries that OpenCV and SDL's windows (-v 1/2) load: Debian bookworm's current
# versions, which its security updates replace, so they are not pinned. And a non-root user
# (uid 1000, the first user of most Linux desktops, so that what it writes to a mounted folder
# is yours) whose home holds the code, checkpoints and summaries.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libgl1 libglib2.0-0 libice6 libsm6 libx11-6 libxcb1 libxcursor1 libxext6 libxi6 \
        libxrandr2 libxrender1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /bin/bash agent

# The same pinned requirements, installed by the same command, as the tests' CI.
COPY requirements.txt /opt/async-rl/requirements.txt
RUN pip install --no-cache-dir -r /opt/async-rl/requirements.txt

COPY --chown=1000:1000 . /home/agent/async-rl
USER 1000
ENV SDL_FRAMEBUFFER_ACCELERATION=0 \
    PYTHONUNBUFFERED=1
WORKDIR /home/agent/async-rl/algorithms
EXPOSE 6006
CMD ["python", "main.py", "pong"]
