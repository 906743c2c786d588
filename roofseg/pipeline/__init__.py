"""Streaming the tiler's shards into training batches with tf.data, and augmenting them."""
