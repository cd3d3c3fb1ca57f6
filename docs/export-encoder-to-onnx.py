"""Export a pathology foundation model to ONNX for gradelab, with a parity check.

Run it where the weights are (gradelab never downloads them), after accepting the model's licence on
Hugging Face and logging in (`huggingface-cli login`):

    pip install torch timm huggingface_hub onnx onnxruntime
    python docs/export-encoder-to-onnx.py uni2-h encoders/uni2-h.onnx

then, in an experiment file,

    model:
      backbone: {registry: uni2-h, onnx: encoders/uni2-h.onnx}

`gradelab encoders list` prints every name this script knows with its input size, normalisation,
resolution, embedding width and output. The exported graph takes the *normalised* image
([N, 3, S, S], float32, (x - mean) / std as the registry says; gradelab applies that normalisation
itself and checks the graph's input and output shapes against the registry) and returns the embedding
[N, D] exactly as TRIDENT computes it (mahmoodlab/TRIDENT, trident/patch_encoder_models/load.py).
"""
import sys

import numpy as np
import torch

def swiglu(timm):
    return dict(mlp_layer=timm.layers.SwiGLUPacked, act_layer=torch.nn.SiLU)


# name -> (timm model id, timm kwargs as the model card gives them, embedding: 'cls' or 'cls+mean' with
# the number of prefix tokens (class and register tokens) before the patch tokens)
TIMM = {
    'uni': ('hf-hub:MahmoodLab/UNI', lambda timm: dict(init_values=1e-5, dynamic_img_size=True), ('cls', 1)),
    'uni2-h': (
        'hf-hub:MahmoodLab/UNI2-h',
        lambda timm: dict(img_size=224, patch_size=14, depth=24, num_heads=24, init_values=1e-5, embed_dim=1536, mlp_ratio=2.66667 * 2,
                          num_classes=0, no_embed_class=True, reg_tokens=8, dynamic_img_size=True, **swiglu(timm)),
        ('cls', 9),
    ),
    'virchow': ('hf-hub:paige-ai/Virchow', swiglu, ('cls+mean', 1)),
    'virchow2': ('hf-hub:paige-ai/Virchow2', swiglu, ('cls+mean', 5)),
    'h-optimus-0': ('hf-hub:bioptimus/H-optimus-0', lambda timm: dict(init_values=1e-5, dynamic_img_size=False), ('cls', 5)),
    'prov-gigapath': ('hf_hub:prov-gigapath/prov-gigapath', lambda timm: dict(), ('cls', 1)),
}
SIZES = {'uni': 224, 'uni2-h': 224, 'virchow': 224, 'virchow2': 224, 'h-optimus-0': 224, 'prov-gigapath': 224}


class Embedding(torch.nn.Module):
    """The backbone's tokens reduced to the registry's embedding: the class token, or it joined to the patch-token mean."""

    def __init__(self, backbone, how, prefix):
        super().__init__()
        self.backbone, self.how, self.prefix = backbone, how, prefix

    def forward(self, image):
        tokens = self.backbone.forward_features(image)
        cls = tokens[:, 0]
        if self.how == 'cls':
            return cls
        return torch.cat([cls, tokens[:, self.prefix:].mean(1)], dim=-1)


def main(name, out):
    import timm
    if name not in TIMM:
        sys.exit(f'{name}: not exported by this script (CONCH v1.5 and Phikon need their own packages); known: {", ".join(TIMM)}')
    model_id, kwargs, (how, prefix) = TIMM[name]
    backbone = timm.create_model(model_id, pretrained=True, **kwargs(timm)).eval()
    model = Embedding(backbone, how, prefix).eval()
    size = SIZES[name]
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ref = model(x).numpy()
    torch.onnx.export(model, x, out, input_names=['image'], output_names=['embedding'],
                      dynamic_axes={'image': {0: 'N'}, 'embedding': {0: 'N'}}, opset_version=17)
    import onnxruntime as ort
    got = ort.InferenceSession(out, providers=['CPUExecutionProvider']).run(None, {'image': x.numpy()})[0]
    err = float(np.max(np.abs(got - ref)) / (np.max(np.abs(ref)) or 1))
    print(f'{out}: embedding {got.shape[1]} wide; ONNX Runtime vs PyTorch, max relative difference {err:.2e}')
    if err > 1e-3:
        sys.exit('parity check failed: the ONNX graph does not compute what the PyTorch model does')


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
