"""AD vs CN classification of template-space tau SUVR, with occlusion-sensitivity maps."""
