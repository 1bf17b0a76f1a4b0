"""Label Studio in the loop (FSDL lab 6): label new handwriting, export it, train on it.

`labeling.server` runs a local, offline Label Studio from its own virtualenv (it needs numpy 2;
the project's pins numpy 1.26), `labeling.project` sets up a project over a folder of page images
(optionally pre-annotated by the pushed page recognizer), and `labeling.export` turns Label
Studio's JSON export into PAGE-XML pages and line TFRecords for the pipeline. A runner-level
package: it uses data/ and the serving clients, never the training stack.
"""
