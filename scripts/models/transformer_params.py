#!/usr/bin/env python3
"""The parameters (names, shapes, total) of fairseq's `transformer` model as a PyTorch module
tree with fairseq's names, for `models/tests/transformer.rs`: a faithful re-definition of
fairseq 3d262bb `fairseq/models/transformer/transformer_{encoder,decoder}.py`,
`fairseq/modules/transformer_layer.py` and `multihead_attention.py` (post-LN without a final layer
norm, or pre-LN with one; sinusoidal positions, which have no parameters), not an import of fairseq (which does not
install in this environment's Python without a C++ build).

    /work/main/.venv/bin/python scripts/models/transformer_params.py models/tests/fixtures/transformer_params.json
"""
import json
import sys

from torch import nn


def attention(d):
    m = nn.Module()
    m.k_proj, m.v_proj, m.q_proj, m.out_proj = (nn.Linear(d, d) for _ in range(4))
    return m


def layer(d, ffn, decoder):
    m = nn.Module()
    m.self_attn = attention(d)
    m.self_attn_layer_norm = nn.LayerNorm(d)
    if decoder:
        m.encoder_attn = attention(d)
        m.encoder_attn_layer_norm = nn.LayerNorm(d)
    m.fc1, m.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
    m.final_layer_norm = nn.LayerNorm(d)
    return m


def transformer(src_vocab, tgt_vocab, d, ffn, encoder_layers, decoder_layers, share_all, share_io, pre_ln=False):
    m = nn.Module()
    enc, dec = nn.Module(), nn.Module()
    enc.embed_tokens = nn.Embedding(src_vocab, d, padding_idx=1)
    enc.layers = nn.ModuleList(layer(d, ffn, False) for _ in range(encoder_layers))
    # share_all_embeddings: the decoder's table is the encoder's module (counted once).
    dec.embed_tokens = enc.embed_tokens if share_all else nn.Embedding(tgt_vocab, d, padding_idx=1)
    dec.layers = nn.ModuleList(layer(d, ffn, True) for _ in range(decoder_layers))
    if not (share_all or share_io):
        dec.output_projection = nn.Linear(d, tgt_vocab, bias=False)
    if pre_ln:  # normalize_before: a final layer norm after each stack
        enc.layer_norm, dec.layer_norm = nn.LayerNorm(d), nn.LayerNorm(d)
    m.encoder, m.decoder = enc, dec
    return m


CONFIGS = {
    # transformer_iwslt_de_en over fairseq's prepare-iwslt14.sh dictionaries (de 8848, en 6632),
    # --share-decoder-input-output-embed as in its translation README.
    "iwslt": dict(src_vocab=8848, tgt_vocab=6632, d=512, ffn=1024, encoder_layers=6, decoder_layers=6,
                  share_all=False, share_io=True),
    "iwslt-joint-shared": dict(src_vocab=10000, tgt_vocab=10000, d=512, ffn=1024, encoder_layers=6,
                               decoder_layers=6, share_all=True, share_io=True),
    "tiny": dict(src_vocab=40, tgt_vocab=40, d=16, ffn=24, encoder_layers=2, decoder_layers=1,
                 share_all=False, share_io=False),
    "tiny-shared": dict(src_vocab=40, tgt_vocab=40, d=16, ffn=24, encoder_layers=1, decoder_layers=2,
                        share_all=True, share_io=True),
    # AdaBelief's transformer_iwslt_de_en_v2: pre-LN, --share-all-embeddings.
    "iwslt-v2-pre-ln": dict(src_vocab=10000, tgt_vocab=10000, d=512, ffn=1024, encoder_layers=6,
                            decoder_layers=6, share_all=True, share_io=True, pre_ln=True),
    "tiny-pre-ln": dict(src_vocab=40, tgt_vocab=40, d=16, ffn=24, encoder_layers=1, decoder_layers=1,
                        share_all=False, share_io=True, pre_ln=True),
}


def main(out):
    data = {}
    for name, cfg in CONFIGS.items():
        m = transformer(**cfg)
        params = [(n, list(p.shape)) for n, p in m.named_parameters()]
        data[name] = {"config": cfg, "total": sum(p.numel() for p in m.parameters()),
                      "parameters": params if name.startswith("tiny") else []}
        print(name, data[name]["total"])
    with open(out, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
