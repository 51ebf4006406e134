"""The contracts every layer shares: errors, configuration, fingerprints, the model schema, the environment.

Nothing here reads or writes a store, a registry or the network; every other
package of lockstep may import from here, and this package imports from no
other package of lockstep.
"""
