"""vgg_patch: tensorflow-vgg's VGG19 with CBAM after pool5 (issue 4 fills it)."""
