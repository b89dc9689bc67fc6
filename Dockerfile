# Train, evaluate and watch agents; TensorBoard on port 6006.
FROM python:3.11-slim

# X client libraries for OpenCV's windows (-v 1/2 with a forwarded display).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 libsm6 libxext6 libxrender1 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --shell /bin/bash agent
WORKDIR /home/agent/async-rl
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=agent:agent . .

USER agent
WORKDIR /home/agent/async-rl/algorithms
EXPOSE 6006
CMD ["python", "main.py", "pong"]
