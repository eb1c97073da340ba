// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title GasliteStyleDrop (benchmark reference, never used by the engine)
/// @notice Our own contract in the style of GasliteDrop's `airdropERC20` (github.com/PopPunkLLC/GasliteDrop), the
/// cheapest public ERC-20 batch sender: pull the batch's total from the caller with one `transferFrom`, then one
/// `transfer(to, amount)` per recipient in an assembly loop over two ABI arrays. Like GasliteDrop it checks only
/// that each call did not revert (not the returned bool) and has no batch id, operators or float.
/// `make bench-settlement` deploys it beside BatchPayout with the same token and compares gas per payout.
contract GasliteStyleDrop {
    function airdropERC20(address token, address[] calldata addresses, uint256[] calldata amounts, uint256 total)
        external
    {
        assembly {
            if iszero(eq(addresses.length, amounts.length)) { revert(0, 0) }
            // transferFrom(caller, this, total). Scratch 0x00..0x64 overwrites the free-memory pointer and the zero
            // slot; nothing after this block uses memory, and the function returns nothing.
            mstore(0x00, shl(224, 0x23b872dd))
            mstore(0x04, caller())
            mstore(0x24, address())
            mstore(0x44, total)
            if iszero(call(gas(), token, 0, 0x00, 0x64, 0, 0)) { revert(0, 0) }
            mstore(0x00, shl(224, 0xa9059cbb)) // transfer(address,uint256)
            let gap := sub(amounts.offset, addresses.offset)
            let end := add(addresses.offset, shl(5, addresses.length))
            for { let at := addresses.offset } lt(at, end) { at := add(at, 0x20) } {
                mstore(0x04, calldataload(at))
                mstore(0x24, calldataload(add(at, gap)))
                if iszero(call(gas(), token, 0, 0x00, 0x44, 0, 0)) { revert(0, 0) }
            }
        }
    }
}
