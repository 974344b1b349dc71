print("ringgate-bench: not written yet")
