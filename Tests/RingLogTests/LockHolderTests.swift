import Testing
@testable import RingLog

/// Finding 14: the "in use by pid N" message must name the holder of this file, not of a file
/// with the same inode number on another device.
@Suite struct LockHolderTests {
    // st_dev of 08:01 (major 8, minor 1) and of 00:2f (an overlay or tmpfs).
    let sda1: UInt64 = (8 << 8) | 1
    let tmpfs: UInt64 = 0x2f

    @Test func matchesDeviceAndInode() {
        let line = "3: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF\n"
        #expect(LogFile.flockHolder(locksLine: line, device: sda1, inode: 1234567) == 4242)
        #expect(LogFile.flockHolder(locksLine: line, device: tmpfs, inode: 1234567) == nil, "same inode, other device")
        #expect(LogFile.flockHolder(locksLine: line, device: sda1, inode: 1234568) == nil)
    }

    @Test func ignoresWaitersAndOtherLocks() {
        #expect(LogFile.flockHolder(locksLine: "3: -> FLOCK  ADVISORY  WRITE 4243 08:01:1234567 0 EOF", device: sda1, inode: 1234567) == nil)
        #expect(LogFile.flockHolder(locksLine: "4: POSIX  ADVISORY  WRITE 4244 08:01:1234567 0 EOF", device: sda1, inode: 1234567) == nil)
        // Minor numbers above 255 print in more than two hex digits.
        let major: UInt64 = 0x103, minor: UInt64 = 0x105   // gnu_dev_makedev(major, minor):
        let big = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12)
        #expect(LogFile.flockHolder(locksLine: "5: FLOCK  ADVISORY  WRITE 77 103:105:9", device: big, inode: 9) == 77)
    }
}
