{
  description = "beyond-vibes dev shell: python, uv, node (pi), cmake + ninja (llama.cpp), git";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";
  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "aarch64-darwin" "x86_64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [ python311 uv nodejs_20 cmake ninja git gcc bubblewrap util-linux ];
          shellHook = ''
            echo "beyond-vibes: run ./setup.sh, then .venv/bin/beyond-vibes doctor"
          '';
        };
      });
    };
}
