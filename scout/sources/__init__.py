"""Where frames come from: the CT logs read directly (ct/), a certstream-server-go websocket (feed.py),
JSONL recordings (recording.py, written by `scout record`: record.py), and the replay server that
serves a recording the way certstream-server-go does (replay.py). live.py starts the live source in a
thread; frames.py turns a raw frame into candidate names and certificate facts.

Nothing here knows about brokers, chains or documents: sources hand raw frames to whoever reads them.
May import: config, counters.
"""
