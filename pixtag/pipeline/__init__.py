"""The functions the DAG's tasks call, one per task, and the person in the loop."""
