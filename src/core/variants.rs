//! Every variant of a closed enum, for what must list them all: the OpenAPI
//! document's `enum`s and the store's decoders. The [`variants!`] macro
//! writes the list and an exhaustive `match` beside it, so a variant added
//! to the enum and not to the list does not compile.

/// An enum whose every variant is listed in [`Variants::ALL`].
pub trait Variants: Sized + Copy + 'static {
    const ALL: &'static [Self];
}

/// `variants!(Type: A, B, C)` implements [`Variants`] for a fieldless enum.
#[macro_export]
macro_rules! variants {
    ($t:ty, $($v:ident),+ $(,)?) => {
        impl $crate::core::Variants for $t {
            const ALL: &'static [$t] = &[$(<$t>::$v),+];
        }
        const _: () = {
            // Fails to compile when the enum gains a variant the list lacks.
            #[allow(dead_code)]
            fn exhaustive(x: $t) {
                match x {
                    $(<$t>::$v)|+ => {}
                }
            }
        };
    };
}
