"""Reference implementations for the course "Dropout and Batch Normalization".

This package is the single source of truth: the book computes its numbers with it, the
assembler fills the solution regions of the assignments from it, and the autograder compares
students' answers with it. It imports nothing from ``book``, ``exercises`` or ``autograder``.

Modules
-------
gradcheck                 centred-difference numerical gradients and ``rel_error``
dropout                   inverted dropout, the lecture's dropout, connected masks, input dropout
per_layer_normalization   the lecture's full-training-set normalization of every layer's input
batchnorm                 ``batch_norm`` with torch.nn.functional semantics, staged and
                          closed-form backward passes
torch_bn                  PyTorch batch norm: autograd Function with a closed-form backward,
                          drop-in BatchNorm1d/2d modules, fused Triton kernels for CUDA
digits                    handwritten digits for the experiments (scikit-learn's, or MNIST files)
experiments               the training code of the book's experiments chapter
normalization             layer, group and instance norm (forward, backward), Algorithm 2's
                          population statistics, momentum conventions, input scaling
normalization_experiments the training code of the chapters on why batch norm helps and
                          where it bites
"""
