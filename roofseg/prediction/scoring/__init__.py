"""How good a prediction is: pixel and object scores, the post-processing chosen on labelled scenes
(``roofseg tune``), and the pictures that show where a model fails."""
